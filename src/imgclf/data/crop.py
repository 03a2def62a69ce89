"""Crop to the object before resizing (``data.crop``): none, a centre crop, boxes from a CSV, or faces.

A crop is a rectangle in the coordinates of the image as displayed (after EXIF orientation), widened
by ``data.crop_margin`` (a fraction of the box's own size on every side) and clipped to the image.
Faces are found by OpenCV's bundled Haar cascades on a reduced grey copy; the best-supported face wins, and
an image without a detected face falls back to the centre crop. The same crop is applied to train,
validation and test images, once, before the decoded cache (whose key includes ``CropPlan.key``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x, y, width, height in pixels
DETECT_SIDE = 480  # faces are searched on a copy whose long side is at most this
# Real faces gather 15-30 overlapping detections on phone-size scenes, false ones (on masked faces,
# where the cascades rarely fire) 6-7 (bench/crop_faces.py): a wrong crop is worse than the centre.
MIN_NEIGHBOURS = 8


@dataclass(frozen=True)
class CropPlan:
    """How every image is cropped; ``boxes`` maps an image path (as a string) to its box."""

    mode: str = "none"
    fraction: float = 1.0
    margin: float = 0.0
    boxes: Mapping[str, Box] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.mode != "none" and not (self.mode == "center" and self.fraction >= 1.0)

    def key(self) -> str:
        """What the decoded pixels depend on: part of the decoded cache's key."""
        if not self.active:
            return "none"
        digest = hashlib.sha1(f"{self.mode}|{self.fraction}|{self.margin}".encode())
        for path in sorted(self.boxes):
            digest.update(f"{path}={self.boxes[path]}\n".encode())
        return digest.hexdigest()[:12]

    def decode_side(self, side: int, path: str, size: tuple[int, int] | None) -> int:
        """How long the shorter side of the decoded image must stay for its crop to still cover
        ``side`` pixels (``size``: the displayed width, height; needed for boxes only)."""
        if self.mode == "boxes" and size is not None and str(path) in self.boxes:
            x0, y0, x1, y1 = widen(self.boxes[str(path)], self.margin, *size)
            return max(side, round(side * min(size) / max(1, min(x1 - x0, y1 - y0))))
        if self.mode == "faces":
            return 4 * side  # a face is rarely under a quarter of the picture
        return max(side, round(side / self.fraction)) if self.active else side

    def apply(self, image: np.ndarray, path: str,
              displayed_width: int | None = None) -> tuple[np.ndarray, bool]:
        """``image`` cropped, and whether it fell back to the centre crop (no face found, no box
        for this image). ``displayed_width``: the file's full width, when ``image`` was decoded at
        a reduced scale (boxes are in full-size pixels)."""
        height, width = image.shape[:2]
        if not self.active:
            return image, False
        box = self.boxes.get(str(path)) if self.mode == "boxes" else None
        if self.mode == "faces":
            box = find_face(image)
        elif box is not None and displayed_width:
            box = tuple(v * width / displayed_width for v in box)
        fell_back = self.mode in ("faces", "boxes") and box is None
        x0, y0, x1, y1 = (widen(box, self.margin, width, height) if box is not None
                          else center_region(width, height, self.fraction))
        return np.ascontiguousarray(image[y0:y1, x0:x1]), fell_back


def center_region(width: int, height: int, fraction: float) -> tuple[int, int, int, int]:
    crop_w, crop_h = max(1, round(width * fraction)), max(1, round(height * fraction))
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    return x0, y0, x0 + crop_w, y0 + crop_h


def widen(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = max(0, round(x - margin * w)), max(0, round(y - margin * h))
    x1, y1 = min(width, round(x + w + margin * w)), min(height, round(y + h + margin * h))
    if x1 - x0 < 1 or y1 - y0 < 1:  # a box outside the image: keep the whole image
        return 0, 0, width, height
    return x0, y0, x1, y1


@lru_cache(maxsize=1)
def _cascades() -> tuple[cv2.CascadeClassifier, ...]:
    names = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml",
             "haarcascade_profileface.xml")
    return tuple(cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name)) for name in names)


def find_face(image: np.ndarray) -> Box | None:
    """The most certain face in an RGB image (x, y, w, h in its pixels), or None. The cascades are
    tried in turn (frontal, frontal alt2, profile): a masked face often defeats the first one."""
    height, width = image.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    small = image if scale == 1.0 else cv2.resize(image, (max(1, round(width * scale)),
                                                          max(1, round(height * scale))),
                                                  interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    min_side = max(20, round(0.08 * min(gray.shape)))
    for cascade in _cascades():
        found, neighbours = cascade.detectMultiScale2(gray, scaleFactor=1.1, minNeighbors=MIN_NEIGHBOURS,
                                                      minSize=(min_side, min_side))
        if len(found):  # the best-supported detection: a false positive gathers fewer neighbours
            x, y, w, h = found[int(np.argmax(neighbours))]
            return x / scale, y / scale, w / scale, h / scale
    return None
