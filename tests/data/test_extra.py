"""data.extra_train: another labelled folder in either layout, the competition's classes only."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from imgclf.data.extra import extra_fingerprint, load_extra_train
from imgclf.errors import DataError
from tests.helpers.datasets import draw_class_image
from tests.helpers.trainkit import competition


def write_extra_folders(root, classes=("cat", "dog"), per_class=3, seed=5):
    """An ImageFolder-like extra set: root/<class>/*.png of the same drawings as the competition's."""
    rng = np.random.default_rng(seed)
    all_classes = ("cat", "dog", "fox")
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        k = all_classes.index(name) if name in all_classes else 0
        for i in range(per_class):
            cv2.imwrite(str(root / name / f"extra_{name}_{i}.png"), draw_class_image(k, rng, 16))
    return root


def test_class_folders_and_csv_layouts_map_to_the_competition_classes(tmp_path):
    cfg, paths, comp, _ = competition(tmp_path, f"data.extra_train={tmp_path / 'extra'}")
    write_extra_folders(tmp_path / "extra")
    extra = load_extra_train(cfg, comp)
    assert len(extra) == 6
    assert sorted(set(extra["label"])) == [comp.classes.index("cat"), comp.classes.index("dog")]
    first = extra_fingerprint(extra)
    cv2.imwrite(str(extra["path"][0]), np.zeros((16, 16, 3), np.uint8))  # a changed extra file
    assert extra_fingerprint(load_extra_train(cfg, comp)) != first

    csv_dir = tmp_path / "extra_csv"
    write_extra_folders(csv_dir / "images_src")
    (csv_dir / "train").mkdir()
    rows = []
    for path in sorted((csv_dir / "images_src").glob("*/*.png")):
        path.rename(csv_dir / "train" / path.name)
        rows.append({"image_id": path.stem, "label": path.parent.name})
    pd.DataFrame(rows).to_csv(csv_dir / "train.csv", index=False)
    extra = load_extra_train(cfg.updated({"data.extra_train": csv_dir}), comp)
    assert len(extra) == 6 and all(p.parent == csv_dir / "train" for p in extra["path"])


def test_unknown_labels_are_one_error_naming_them(tmp_path):
    cfg, paths, comp, _ = competition(tmp_path, f"data.extra_train={tmp_path / 'extra'}")
    write_extra_folders(tmp_path / "extra", classes=("cat", "wolf", "bear"))
    with pytest.raises(DataError, match="bear, wolf"):
        load_extra_train(cfg, comp)
