"""Tiny real image data sets written to a folder: the Kaggle CSV layout and the mask-competition layout,
with images whose classes a small model learns in a few epochs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from imgclf.data.competition import Competition
from imgclf.data.ingest import load_competition
from imgclf.paths import Paths

RED_BGR = (0, 0, 255)  # pure red, as OpenCV writes it


def draw_class_image(label_index: int, rng: np.random.Generator, side: int = 32) -> np.ndarray:
    """A BGR image whose class is learnable: a colour and a shape per class, plus noise."""
    colours = [(40, 40, 220), (40, 200, 40), (220, 60, 40), (30, 200, 220), (200, 40, 200), (220, 220, 40)]
    image = rng.integers(0, 50, size=(side, side, 3), dtype=np.uint8)
    colour = colours[label_index % len(colours)]
    c = side // 2 + int(rng.integers(-2, 3))
    r = side // 4
    if label_index % 3 == 0:
        cv2.circle(image, (c, c), r, colour, -1)
    elif label_index % 3 == 1:
        cv2.rectangle(image, (c - r, c - r), (c + r, c + r), colour, -1)
    else:
        pts = np.array([[c, c - r], [c - r, c + r], [c + r, c + r]], dtype=np.int32)
        cv2.fillPoly(image, [pts], colour)
    return image


def make_kaggle_dataset(
    root: Path,
    classes: tuple = ("cat", "dog", "fox"),
    n_train: int = 60,
    n_test: int = 20,
    ext: str = ".jpg",
    ids_with_ext: bool = False,
    proba_submission: bool = False,
    groups: bool = False,
    side: int = 32,
    seed: int = 0,
    label_column: str = "label",
    id_column: str = "image_id",
) -> Path:
    """A Kaggle CSV layout: train.csv, sample_submission.csv, train/, test/ and the test labels."""
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)
    rows, test_rows = [], []
    for split, count, out in (("train", n_train, rows), ("test", n_test, test_rows)):
        for i in range(count):
            k = i % len(classes)
            stem = f"{split[:2]}{i:04d}{rng.integers(1 << 16):04x}"
            cv2.imwrite(str(root / split / f"{stem}{ext}"), draw_class_image(k, rng, side))
            out.append({id_column: stem + (ext if ids_with_ext else ""), label_column: classes[k],
                        "group": f"g{i // 3}"})
    train = pd.DataFrame(rows)
    if not groups:
        train = train.drop(columns="group")
    train.to_csv(root / "train.csv", index=False)
    test = pd.DataFrame(test_rows)
    if proba_submission:
        sample = pd.DataFrame({id_column: test[id_column], **{c: 1.0 / len(classes) for c in classes}})
    else:
        sample = pd.DataFrame({id_column: test[id_column], label_column: classes[0]})
    sample.to_csv(root / "sample_submission.csv", index=False)
    test[[id_column, label_column]].to_csv(root / "solution.csv", index=False)
    return root


# Mask-competition layout
MASK_STEMS = ("mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal")
MASK_EXTS = (".jpg", ".jpeg", ".png")
# Ages per age group, corner cases first (29 | 30, 59 | 60), so small fixtures still cover them.
MASK_AGES = ((29, 18, 23, 26), (30, 59, 41, 48), (60, 60, 60, 61))


def draw_mask_image(mask: int, gender: int, age_group: int, rng: np.random.Generator,
                    side: int = 24) -> np.ndarray:
    """A BGR 'face' whose three attributes are learnable: background brightness = age group, the
    shape and size in the upper half = gender (large disc / small triangle), colour of the lower
    band = mask state (blue worn, green incorrect, red not worn)."""
    level = (20, 100, 180)[age_group]
    image = np.clip(level + rng.normal(0, 6, size=(side, side, 3)), 0, 255).astype(np.uint8)
    c, top = side // 2 + int(rng.integers(-1, 2)), side // 3
    ink = (255, 255, 255) if age_group < 2 else (0, 0, 0)
    if gender == 0:
        cv2.circle(image, (c, top), side // 4, ink, -1)
    else:
        r = side // 8
        cv2.fillPoly(image, [np.array([[c, top - r], [c - r, top + r], [c + r, top + r]],
                                      dtype=np.int32)], ink)
    band = ((255, 0, 0), (0, 255, 0), (0, 0, 255))[mask]
    cv2.rectangle(image, (side // 6, side * 3 // 5), (side - side // 6, side - 2), band, -1)
    return image


def make_mask_dataset(
    root: Path,
    n_people: int = 36,
    n_test: int = 24,
    side: int = 24,
    seed: int = 0,
    ages: list[int] | None = None,
    genders: list[str] | None = None,
    hidden_files: bool = True,
) -> Path:
    """The mask-competition layout: train/train.csv, train/images/<path>/{7 photos} with mixed
    extensions, eval/info.csv + eval/images/, ``._`` resource forks, and solution.csv (the test labels).

    People alternate male/female and cycle through the age groups (ages from MASK_AGES) unless
    ``ages``/``genders`` are given. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    images = root / "train" / "images"
    images.mkdir(parents=True, exist_ok=True)
    ages = ages or [MASK_AGES[(i // 2) % 3][(i // 6) % 4] for i in range(n_people)]
    genders = genders or [("male", "female")[i % 2] for i in range(len(ages))]
    rows = []
    for i, (age, gender) in enumerate(zip(ages, genders, strict=True)):
        pid = f"{i + 1:06d}"
        path = f"{pid}_{gender}_Asian_{age}"
        folder = images / path
        folder.mkdir()
        group = 0 if age < 30 else (1 if age < 60 else 2)
        for j, stem in enumerate(MASK_STEMS):
            mask = 0 if stem.startswith("mask") else (1 if stem == "incorrect_mask" else 2)
            image = draw_mask_image(mask, int(gender == "female"), group, rng, side)
            cv2.imwrite(str(folder / f"{stem}{MASK_EXTS[(i + j) % 3]}"), image)
        if hidden_files and i % 3 == 0:  # macOS AppleDouble files: not images, must be skipped
            (folder / "._mask1.jpg").write_bytes(b"\x00\x05\x16\x07junk")
            (folder / "._normal.png").write_bytes(b"\x00\x05\x16\x07junk")
        rows.append({"id": pid, "gender": gender, "race": "Asian", "age": age, "path": path})
    pd.DataFrame(rows).to_csv(root / "train" / "train.csv", index=False)

    eval_images = root / "eval" / "images"
    eval_images.mkdir(parents=True, exist_ok=True)
    test_rows = []
    for i in range(n_test):
        mask, gender, group = int(rng.integers(3)), int(rng.integers(2)), i % 3
        image_id = f"{rng.integers(1 << 62):016x}{i:04d}{MASK_EXTS[i % 3]}"
        cv2.imwrite(str(eval_images / image_id), draw_mask_image(mask, gender, group, rng, side))
        test_rows.append({"ImageID": image_id, "ans": mask * 6 + gender * 3 + group})
    if hidden_files:
        (eval_images / "._0000.jpg").write_bytes(b"\x00\x05\x16\x07junk")
    solution = pd.DataFrame(test_rows)
    solution.assign(ans=0).to_csv(root / "eval" / "info.csv", index=False)
    solution.to_csv(root / "solution.csv", index=False)
    return root


# ImageFolder layout
def write_imagefolder(root: Path, classes: tuple[str, ...], per_class: int, n_test: int) -> None:
    """train/<class>/img<i>.png and test/t<i>.png, with macOS leftovers and a hidden folder to skip."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / "train" / name).mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(root / "train" / name / f"img{i}.png"), draw_class_image(k, rng, 16))
        (root / "train" / name / f"._img{i}.png").write_bytes(b"\x00\x05\x16\x07")
    (root / "train" / ".hidden").mkdir()
    (root / "test").mkdir()
    for i in range(n_test):
        cv2.imwrite(str(root / "test" / f"t{i}.png"), draw_class_image(i, rng, 16))
    (root / "test" / "._t0.png").write_bytes(b"\x00\x05\x16\x07")


def load_fixture(fast_cfg, root: Path, *overrides: str) -> tuple[Competition, Paths]:
    """The competition under ``root`` and its Paths, with the ``fast_cfg`` fixture's config."""
    cfg = fast_cfg(root, *overrides)
    return load_competition(cfg, Paths.from_config(cfg)), Paths.from_config(cfg)
