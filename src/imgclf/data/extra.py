"""``data.extra_train``: another labelled image folder added to the training images of every fold.

It never enters ``folds.csv``, validation, OOF or the competition's data fingerprint (those describe
the competition's own train set, which CV must score honestly); its own fingerprint is recorded in
each experiment that trained with it, so a changed extra set is noticed before it is mixed in.
Layouts: ``train.csv`` (id, label) beside an image folder (``train/``, ``images/`` or the folder
itself), or class folders (``DIR/train/<class>/*`` or ``DIR/<class>/*``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.images import is_hidden, list_images
from imgclf.data.tables import read_csv_strings, resolve_image_paths
from imgclf.errors import ConfigError, DataError


def load_extra_train(cfg: Config, comp: Competition) -> pd.DataFrame | None:
    """The extra images as ``path``, ``label`` (class index of the competition), or None when unset."""
    folder = cfg.data.extra_train
    if folder is None:
        return None
    folder = Path(folder) if Path(folder).is_absolute() else comp.data_dir / folder
    if comp.multi_label:
        raise ConfigError("data.extra_train: extra training data is single-label only for now")
    if not folder.is_dir():
        raise DataError(f"data.extra_train: folder not found: {folder}")
    paths, values = _csv_layout(folder, comp) if (folder / "train.csv").is_file() else _class_folders(folder)
    index = {str(v): i for i, v in enumerate(comp.class_values)}
    unknown = sorted({str(v) for v in values} - set(index))
    if unknown:
        raise DataError(f"data.extra_train: {folder} has labels that are not classes of the competition: "
                        f"{', '.join(unknown[:10])} (classes: {', '.join(comp.classes[:10])})")
    if not paths:
        raise DataError(f"data.extra_train: {folder} holds no labelled image")
    return pd.DataFrame({"path": paths, "label": np.array([index[str(v)] for v in values], dtype=np.int64)})


def _csv_layout(folder: Path, comp: Competition) -> tuple[list[Path], list[str]]:
    csv = folder / "train.csv"
    frame = read_csv_strings(csv)
    id_col = comp.id_column if comp.id_column in frame.columns else frame.columns[0]
    targets = [c for c in comp.target_columns if c in frame.columns]
    label_col = targets[0] if targets else next((c for c in frame.columns if c != id_col), None)
    if label_col is None:
        raise DataError(f"data.extra_train: {csv} has no label column besides '{id_col}'")
    images = next((folder / n for n in ("train", "train_images", "images") if (folder / n).is_dir()), folder)
    return resolve_image_paths(frame[id_col], images, csv.name), frame[label_col].tolist()


def _class_folders(folder: Path) -> tuple[list[Path], list[str]]:
    root = folder / "train" if (folder / "train").is_dir() else folder
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not is_hidden(p.name))
    if not classes:
        raise DataError(f"data.extra_train: {folder} has neither train.csv nor class folders")
    paths, values = [], []
    for class_dir in classes:
        images = list_images(class_dir)
        paths += images
        values += [class_dir.name] * len(images)
    return paths, values


def extra_fingerprint(extra: pd.DataFrame | None) -> str | None:
    """Files (names, sizes, mtimes) and labels of the extra set; None without one."""
    if extra is None:
        return None
    digest = hashlib.sha256()
    for path, label in zip(extra["path"], extra["label"], strict=True):
        stat = os.stat(path)
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{label}\n".encode())
    return digest.hexdigest()[:16]
