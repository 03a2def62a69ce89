"""Decoding an image file as the reference tools show it: Pillow, EXIF orientation applied, RGB uint8.

Every mode ends as HxWx3 uint8 RGB:
- EXIF Orientation is applied (phone photos are stored sideways and tagged);
- CMYK and YCCK JPEGs are converted by Pillow (Adobe's inverted CMYK included);
- transparency (RGBA, LA, PA, palette with a transparent index) is composited on a white
  background, as an image viewer shows it on a page (``ALPHA_BACKGROUND``);
- 16-bit images keep their high byte (``value >> 8``), 32-bit integer images are scaled to their
  maximum when it exceeds 16 bits, float images are read as 0..1 (or scaled to their maximum when it
  exceeds 1).

A JPEG asked for at a small size is decoded at a reduced scale (DCT scaling, Pillow's ``draft``):
a 6000x4000 photo costs a fraction of a full decode. What Pillow cannot open (e.g. multi-channel
16-bit TIFF) is decoded by OpenCV.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgclf.errors import DataError

ALPHA_BACKGROUND = (255, 255, 255)
Image.MAX_IMAGE_PIXELS = 400_000_000  # whole-slide and satellite tiles are data, not bombs

_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def read_image(path: str | Path, min_side: int | None = None) -> np.ndarray:
    """Decode ``path`` to HxWx3 RGB uint8. ``min_side``: the decoder may reduce the image (JPEG
    only, by 1/2, 1/4 or 1/8) as long as both sides stay at least this long."""
    try:
        with Image.open(path) as image:
            if min_side is not None:
                image.draft(None, (min_side, min_side))
            return pil_to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return _opencv_fallback(path, exc)


def _opencv_fallback(path: str | Path, pillow_error: Exception) -> np.ndarray:
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DataError(f"image file is empty (0 bytes): {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        reason = str(pillow_error).splitlines()[0][:120] if str(pillow_error) else type(pillow_error).__name__
        raise DataError(f"cannot decode image file (corrupt or not an image): {path} ({reason})")
    return opencv_to_rgb(image)


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """A loaded Pillow image of any mode as HxWx3 RGB uint8 (the rules in the module docstring)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _TRANSPARENT_MODES:
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (*ALPHA_BACKGROUND, 255))
        return np.array(Image.alpha_composite(background, image).convert("RGB"))
    if image.mode in ("RGB", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.array(image.convert("RGB"))  # writable: torch.from_numpy needs one
    return gray_to_rgb(scale_to_uint8(np.asarray(image)))


def scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """High-bit-depth or float pixels as uint8 (the rules in the module docstring)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind in "ui":
        top = int(array.max()) if array.size else 0
        if top <= 255 and array.dtype.itemsize > 2:  # a 32-bit container of 8-bit values
            return array.astype(np.uint8)
        if top <= 65535:
            return (array.astype(np.int64).clip(0, None) >> 8).astype(np.uint8)
        return (array.astype(np.float64) * (255.0 / top)).clip(0, 255).astype(np.uint8)
    values = array.astype(np.float32)
    top = float(np.nanmax(values)) if values.size else 0.0
    factor = 255.0 if top <= 1.0 else 255.0 / top
    return np.nan_to_num(values * factor).clip(0, 255).round().astype(np.uint8)


def gray_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def opencv_to_rgb(image: np.ndarray) -> np.ndarray:
    """An ``cv2.imread(..., IMREAD_UNCHANGED)`` array (BGR or BGRA, any depth) as RGB uint8."""
    image = scale_to_uint8(image)
    if image.ndim == 2 or image.shape[2] == 1:
        return gray_to_rgb(image)
    if image.shape[2] == 2:  # gray + alpha
        gray, alpha = image[:, :, 0].astype(np.float32), image[:, :, 1:2].astype(np.float32) / 255.0
        return gray_to_rgb((gray[:, :, None] * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8))
    if image.shape[2] == 4:
        rgb, alpha = image[:, :, 2::-1].astype(np.float32), image[:, :, 3:4].astype(np.float32) / 255.0
        background = np.asarray(ALPHA_BACKGROUND, np.float32)
        return (rgb * alpha + background * (1 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(image[:, :, 2::-1])


def oriented_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as displayed, after EXIF orientation, from the header only."""
    with Image.open(path) as image:
        width, height = image.size
        # a PNG's getexif decodes the whole image to find a late eXIf chunk: an early one is in info
        header_only = image.format != "PNG" or "exif" in image.info
        orientation = image.getexif().get(0x0112, 1) if header_only else 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
