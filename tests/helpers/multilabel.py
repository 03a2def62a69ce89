"""Tiny real multi-label competitions: each label is a coloured patch in its own cell of the image,
so a small model learns every label independently; 1-3 labels an image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

LABELS = ("agriculture", "clear", "haze", "primary", "road", "water")
COLOURS = ((40, 40, 220), (40, 200, 40), (220, 60, 40), (30, 200, 220), (200, 40, 200), (220, 220, 40))


def draw_labels_image(present: np.ndarray, rng: np.random.Generator, side: int = 32) -> np.ndarray:
    """A BGR image with label k's colour filling cell k of a 3 x 2 grid when label k is present."""
    image = rng.integers(0, 60, size=(side, side, 3), dtype=np.uint8)
    h, w = side // 2, side // 3
    for k in np.flatnonzero(present):
        r, c = divmod(int(k), 3)
        cv2.rectangle(image, (c * w + 1, r * h + 1), ((c + 1) * w - 2, (r + 1) * h - 2), COLOURS[k % 6], -1)
    return image


def draw_label_sets(n: int, n_labels: int, rng: np.random.Generator,
                    rare: tuple[int, ...] = ()) -> np.ndarray:
    """[n, n_labels] 0/1 with 1-3 labels a row; ``rare`` labels occur in about 8 % of the rows."""
    weights = np.array([0.15 if k in rare else 1.0 for k in range(n_labels)])
    out = np.zeros((n, n_labels), dtype=int)
    for i in range(n):
        count = int(rng.integers(1, 4))
        out[i, rng.choice(n_labels, size=count, replace=False, p=weights / weights.sum())] = 1
    return out


def make_multilabel_dataset(root: Path, layout: str = "tags", n_train: int = 96, n_test: int = 24,
                            labels: tuple[str, ...] = LABELS, side: int = 32, seed: int = 0,
                            groups: bool = False, rare: tuple[int, ...] = ()) -> Path:
    """``layout``: ``tags`` (image_name,tags: space-separated labels) or ``columns`` (one 0/1 column per
    label, plus a PatientID column with ``groups``); writes the test labels as solution.csv."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
    tables = {}
    for split, count in (("train", n_train), ("test", n_test)):
        sets = draw_label_sets(count, len(labels), rng, rare)
        ids = [f"{split[:2]}_{i:04d}" for i in range(count)]
        for image_id, present in zip(ids, sets, strict=True):
            cv2.imwrite(str(root / split / f"{image_id}.png"), draw_labels_image(present, rng, side))
        tables[split] = (ids, sets)
    id_col = "image_name" if layout == "tags" else "StudyInstanceUID"

    def table(split: str) -> pd.DataFrame:
        ids, sets = tables[split]
        if layout == "tags":
            tags = [" ".join(labels[k] for k in np.flatnonzero(s)) for s in sets]
            return pd.DataFrame({id_col: ids, "tags": tags})
        return pd.DataFrame({id_col: ids, **{name: sets[:, k] for k, name in enumerate(labels)}})

    train = table("train")
    if groups:
        train["PatientID"] = [f"p{i // 3:03d}" for i in range(len(train))]
    train.to_csv(root / "train.csv", index=False)
    test = table("test")
    test.to_csv(root / "solution.csv", index=False)
    sample = test.copy()
    if layout == "tags":
        sample["tags"] = labels[0]
    else:
        sample[list(labels)] = 0.5
    sample.to_csv(root / "sample_submission.csv", index=False)
    return root
