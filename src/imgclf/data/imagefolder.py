"""The ImageFolder layout: train/<class>/* and test/* (no CSV); the submission is id,label."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.images import is_hidden, list_images
from imgclf.data.tables import check_unique_ids, coerce_like, sort_class_values
from imgclf.errors import DataError

log = logging.getLogger(__name__)


def load_imagefolder(data_dir: Path, cfg: Config) -> Competition:
    train_dir = data_dir / (cfg.data.train_dir or "train")
    test_dir = data_dir / (cfg.data.test_dir or "test")
    if not train_dir.is_dir():
        raise DataError(f"train image folder not found: {train_dir}")
    class_dirs = sorted(p for p in train_dir.iterdir() if p.is_dir() and not is_hidden(p.name))
    class_values = sort_class_values([p.name for p in class_dirs])
    # Folder per class value: "1.50" is the class 1.5, whose str() no longer names the folder.
    folder_of = dict(zip(coerce_like(pd.Series([p.name for p in class_dirs]), class_values), class_dirs,
                         strict=True)) if class_dirs else {}
    rows = []
    for index, value in enumerate(class_values):
        folder = folder_of[value]
        images = list_images(folder)
        if not images:
            log.warning("class folder %s holds no images", folder)
        rows += [{"id": f"{folder.name}/{p.stem}", "path": p, "label": index} for p in images]
    if not rows:
        raise DataError(f"{train_dir}: the class folders hold no image files")
    if not test_dir.is_dir():
        raise DataError(f"test image folder not found: {test_dir}")
    test_images = list_images(test_dir)
    if not test_images:
        raise DataError(f"{test_dir}: no image files")
    test = pd.DataFrame({"id": [p.stem for p in test_images], "path": test_images})
    check_unique_ids(test, "id", test_dir)
    train = pd.DataFrame(rows)
    targets = pd.DataFrame({"id": train["id"], "label": [class_values[i] for i in train["label"]]})
    return Competition(
        name=data_dir.name, data_dir=data_dir, layout="imagefolder", train=train, test=test,
        class_values=class_values, id_column="id", target_columns=["label"], submission_kind="label",
        train_targets=targets)
