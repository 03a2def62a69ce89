"""The image side chosen from the data: the median short side, a multiple of 8, capped."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from imgclf.data.sizing import image_size, size_from_sides
from tests.helpers.datasets import load_fixture, make_kaggle_dataset


def test_size_from_sides_rounds_to_eight_and_caps() -> None:
    assert size_from_sides([27, 30, 100], cap=224) == 32
    assert size_from_sides([3, 4, 5], cap=224) == 8
    assert size_from_sides([500, 600, 700], cap=224) == 224


def test_image_size_reads_the_train_images_unless_configured(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "wide", n_train=6, n_test=1, side=40)
    for path in (root / "train").iterdir():  # 40x72 images: the short side decides
        cv2.imwrite(str(path), np.zeros((40, 72, 3), np.uint8))
    comp, _ = load_fixture(fast_cfg, root)
    assert image_size(fast_cfg(root, "data.image_size=null"), comp) == 40
    assert image_size(fast_cfg(root, "data.image_size=null", "data.max_auto_image_size=24"), comp) == 24
    assert image_size(fast_cfg(root, "data.image_size=16"), comp) == 16
