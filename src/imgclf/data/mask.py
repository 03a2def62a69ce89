"""Ingest of the bootcamp mask competition (the mask-competition layout of the README).

``train/train.csv`` lists one person per row (``id,gender,race,age,path``); ``train/images/<path>/``
holds that person's seven photos ``mask1..mask5``, ``incorrect_mask`` and ``normal`` with mixed
extensions. The 18-class label is ``mask*6 + gender*3 + age_group``. ``eval/info.csv``
(``ImageID,ans``) fixes the test images (``eval/images/``) and the submission's rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.images import list_images
from imgclf.data.tables import check_unique_ids, read_csv_strings, resolve_image_paths
from imgclf.errors import DataError

log = logging.getLogger(__name__)

# File stem -> mask state (0 wear, 1 incorrect, 2 not worn), in the order rows are emitted.
MASK_FILES: dict[str, int] = {"mask1": 0, "mask2": 0, "mask3": 0, "mask4": 0, "mask5": 0,
                              "incorrect_mask": 1, "normal": 2}
GENDERS: dict[str, int] = {"male": 0, "female": 1}
ATTRIBUTES = ["mask", "gender", "age_group"]
HEAD_SIZES = (3, 2, 3)  # classes per attribute; label = mask * 6 + gender * 3 + age_group
NUM_CLASSES = 18
TRAIN_COLUMNS = ("id", "gender", "age", "path")  # train.csv's `race` is not used
ID_COLUMN, TARGET_COLUMN = "ImageID", "ans"


def compose_label(mask: np.ndarray | int, gender: np.ndarray | int,
                  age_group: np.ndarray | int) -> np.ndarray | int:
    return mask * 6 + gender * 3 + age_group


def decompose_label(label: np.ndarray | int) -> tuple:
    """The inverse of ``compose_label``: (mask, gender, age_group)."""
    return label // 6, (label // 3) % 2, label % 3


def age_group(age: np.ndarray, young: int, old: int) -> np.ndarray:
    """0 below ``young``, 1 from ``young`` to below ``old``, 2 from ``old`` on."""
    return np.where(age < young, 0, np.where(age < old, 1, 2)).astype(int)


def load_mask_competition(data_dir: Path, cfg: Config) -> Competition:
    dc = cfg.data
    if not dc.mask_young_age_threshold < dc.mask_old_age_threshold:
        raise DataError("data.mask_young_age_threshold must be below data.mask_old_age_threshold "
                        f"(got {dc.mask_young_age_threshold} and {dc.mask_old_age_threshold})")
    train_csv = data_dir / "train" / "train.csv"
    people = _read_people(train_csv)
    train = _train_images(people, data_dir / "train" / "images", train_csv)
    train["age_group"] = age_group(train["age"].to_numpy(), dc.mask_young_age_threshold,
                                   dc.mask_old_age_threshold)
    train["label"] = compose_label(train["mask"], train["gender"], train["age_group"]).astype(int)
    train_old = dc.mask_train_old_age_threshold
    if train_old is not None and train_old != dc.mask_old_age_threshold:
        # Training targets only: validation scores, OOF and folds keep the competition's labels.
        group = age_group(train["age"].to_numpy(), dc.mask_young_age_threshold, train_old)
        train["train_label"] = compose_label(train["mask"], train["gender"], group).astype(int)
        log.info("data.mask_train_old_age_threshold=%d: %d training images relabelled to the "
                 "oldest age group",
                 train_old, int((train["train_label"] != train["label"]).sum()))
    info_csv = data_dir / "eval" / "info.csv"
    info = _read_info(info_csv)
    test = pd.DataFrame({"id": info[ID_COLUMN].to_numpy(),
                         "path": resolve_image_paths(info[ID_COLUMN], _folder(data_dir / "eval" / "images"),
                                                     info_csv.name)})
    targets = pd.DataFrame({ID_COLUMN: train["id"], TARGET_COLUMN: train["label"]})
    return Competition(
        name=data_dir.name, data_dir=data_dir, layout="mask", train=train, test=test,
        class_values=list(range(NUM_CLASSES)), id_column=ID_COLUMN, target_columns=[TARGET_COLUMN],
        submission_kind="label", sample_submission=info, group_column="id",
        train_targets=targets, attributes=list(ATTRIBUTES))


def _folder(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"image folder not found: {path}")
    return path


def _read_people(train_csv: Path) -> pd.DataFrame:
    frame = read_csv_strings(train_csv)
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in TRAIN_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{train_csv}: missing column(s) {missing} (expected id,gender,race,age,path; "
                        f"found {list(frame.columns)})")
    for column in TRAIN_COLUMNS:
        empty = frame[column].isna() | (frame[column].str.strip() == "")
        if empty.any():
            raise DataError(f"{train_csv} row {_row(empty)} column '{column}': empty value")
    frame = frame.assign(path=frame["path"].str.strip(), id=frame["id"].str.strip())
    check_unique_ids(frame, "path", train_csv)
    gender = frame["gender"].str.strip().str.lower()
    bad = ~gender.isin(list(GENDERS))
    if bad.any():
        raise DataError(f"{train_csv} row {_row(bad)} column 'gender': '{frame['gender'][bad].iloc[0]}' "
                        "is not male/female")
    age = pd.to_numeric(frame["age"].str.strip(), errors="coerce")
    bad = age.isna() | (age < 0)
    if bad.any():
        raise DataError(f"{train_csv} row {_row(bad)} column 'age': "
                        f"'{frame['age'][bad].iloc[0]}' is not an age")
    return frame.assign(gender=gender.map(GENDERS).astype(int), age=age)


def _row(mask: pd.Series) -> int:
    """The CSV line number (header = line 1) of the first true entry."""
    return int(np.argmax(mask.to_numpy())) + 2


def _train_images(people: pd.DataFrame, images_dir: Path, train_csv: Path) -> pd.DataFrame:
    """One row per photo: seven per person, in train.csv's order, then MASK_FILES' order."""
    _folder(images_dir)
    rows = []
    for line, person in enumerate(people.itertuples(index=False), start=2):
        folder = images_dir / person.path
        if not folder.is_dir():
            raise DataError(f"{train_csv} row {line}: person folder not found: {folder}")
        found = _person_files(folder)
        for stem, mask in MASK_FILES.items():
            rows.append({"id": f"{person.path}/{stem}", "path": found[stem], "group": person.id,
                         "mask": mask, "gender": person.gender, "age": person.age})
    return pd.DataFrame(rows)


def _person_files(folder: Path) -> dict[str, Path]:
    by_stem: dict[str, list[Path]] = {}
    for path in list_images(folder):  # hidden files such as ._mask1.jpg are skipped there
        by_stem.setdefault(path.stem, []).append(path)
    missing = [s for s in MASK_FILES if s not in by_stem]
    if missing:
        present = ", ".join(sorted(p.name for paths in by_stem.values() for p in paths)) or "no images"
        raise DataError(f"{folder}: missing {', '.join(s + '.*' for s in missing)} (found: {present})")
    for stem in MASK_FILES:
        if len(by_stem[stem]) > 1:
            raise DataError(f"{folder}: several files for '{stem}' "
                            f"({', '.join(p.name for p in by_stem[stem])}); keep one")
    unknown = sorted(set(by_stem) - set(MASK_FILES))
    if unknown:
        log.warning("%s: ignoring image(s) that are not one of the seven photos: %s", folder, unknown)
    return {stem: by_stem[stem][0] for stem in MASK_FILES}


def _read_info(info_csv: Path) -> pd.DataFrame:
    info = read_csv_strings(info_csv)
    info.columns = [c.strip() for c in info.columns]
    if ID_COLUMN not in info.columns:
        raise DataError(f"{info_csv}: missing column '{ID_COLUMN}' (found {list(info.columns)})")
    if TARGET_COLUMN not in info.columns:
        raise DataError(f"{info_csv}: missing column '{TARGET_COLUMN}' (found {list(info.columns)})")
    check_unique_ids(info, ID_COLUMN, info_csv)
    return info
