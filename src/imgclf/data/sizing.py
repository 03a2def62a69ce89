"""The image side training uses when data.image_size is not set: chosen from the data."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.errors import DataError


def auto_image_size(comp: Competition, cap: int, sample: int = 256, seed: int = 0) -> int:
    """Median short side of a sample of train images (read from their headers: no decode, so big
    photos cost nothing), rounded to a multiple of 8 and capped."""
    rng = np.random.default_rng(seed)
    paths = comp.train["path"].to_numpy()
    picks = rng.choice(len(paths), size=min(sample, len(paths)), replace=False)
    sides = []
    for i in picks:
        try:
            with Image.open(paths[i]) as image:  # the header: a turn does not change the short side
                sides.append(min(image.size))
        except (OSError, ValueError, SyntaxError):
            image = cv2.imread(str(paths[i]), cv2.IMREAD_UNCHANGED)  # what Pillow cannot open
            if image is not None:
                sides.append(min(image.shape[:2]))
    if not sides:
        raise DataError(f"none of {len(picks)} sampled train images could be decoded")
    return size_from_sides(sides, cap)


def size_from_sides(sides, cap: int) -> int:
    """Median short side rounded to a multiple of 8, at least 8 and at most ``cap``."""
    side = int(np.median(sides))
    return int(min(cap, max(8, round(side / 8) * 8)))


def image_size(cfg: Config, comp: Competition) -> int:
    return cfg.data.image_size or auto_image_size(comp, cfg.data.max_auto_image_size)
