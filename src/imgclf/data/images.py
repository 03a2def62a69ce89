"""Image files: finding them on disk, checking they are whole, decoding, cropping and resizing them.

Decoding itself lives in ``data.decode`` (Pillow, as the reference tools show an image)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from imgclf.data.crop import CropPlan
from imgclf.data.decode import oriented_size, read_image
from imgclf.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def is_hidden(name: str) -> bool:
    """macOS ``._*`` resource forks and other dot-files are never data."""
    return name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (hidden files skipped), sorted by name."""
    with os.scandir(folder) as entries:
        found = [Path(e.path) for e in entries
                 if e.is_file() and not is_hidden(e.name) and e.name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def list_non_images(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if e.is_file() and not is_hidden(e.name)
                      and not e.name.lower().endswith(IMAGE_EXTENSIONS))


def read_resized(path: str | Path, side: int, crop: CropPlan | None = None) -> np.ndarray:
    """Decode, crop (``data.crop``) and resize to ``side``x``side`` (area interpolation when
    shrinking). A big JPEG is decoded at a reduced scale that still covers the crop at ``side``."""
    return resize_square(read_cropped(path, side, crop)[0], side)


def read_cropped(path: str | Path, side: int, crop: CropPlan | None = None) -> tuple[np.ndarray, bool]:
    """The decoded image after its crop, and whether the crop fell back to the centre crop."""
    if crop is None or not crop.active:
        return read_image(path, min_side=side), False
    size = oriented_size(path) if crop.mode == "boxes" else None
    image = read_image(path, min_side=crop.decode_side(side, str(path), size))
    return crop.apply(image, str(path), size[0] if size else None)


def resize_square(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if (height, width) == (side, side):
        return image
    shrink = side < min(height, width)
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


# File signatures of the formats in IMAGE_EXTENSIONS (the content decides, not the extension).
_SIGNATURES = {"png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",), "bmp": (b"BM",),
               "tiff": (b"II*\x00", b"MM\x00*")}


def image_format(head: bytes) -> str | None:
    """The image format a file's first bytes declare (None: none of ours); extensions may lie."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((name for name, sigs in _SIGNATURES.items() if head.startswith(sigs)), None)


def image_file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a complete image (None: it looks fine), from its first and last bytes:
    missing, empty, not an image format, or a PNG/JPEG cut short (an interrupted copy or download).
    OpenCV decodes a truncated JPEG without an error (grey lower part), so it must be caught here."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty (0 bytes)"
        with open(path, "rb") as handle:
            head = handle.read(16)
            handle.seek(max(0, size - 1024))
            tail = handle.read()
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    kind = image_format(head)
    if kind is None:
        return "not an image (unknown file format)"
    return truncation_problem(kind, tail, path)


def truncation_problem(kind: str, tail: bytes, path: str | Path) -> str | None:
    """The one truncation rule (the EDA and the pre-flight check both use it): a PNG whose last
    1024 bytes hold no IEND chunk, or a JPEG whose last 1024 bytes hold no end-of-image marker and
    that Pillow cannot decode to the end (some cameras append data after the marker). Decoders
    return a half-grey image for such files rather than failing, so decoding alone does not tell."""
    if kind == "png" and b"IEND" not in tail[-1024:]:
        return "truncated PNG (no IEND chunk at its end)"
    if kind == "jpeg" and b"\xff\xd9" not in tail[-1024:]:
        return _decode_problem(path)
    return None


def _decode_problem(path: str | Path) -> str | None:
    try:
        with Image.open(path) as image:
            image.load()
    except Exception as exc:  # noqa: BLE001 - any failure to decode means an unusable file
        return f"truncated or corrupt JPEG ({str(exc).splitlines()[0][:80]})"
    return None


def check_image_files(paths: list | np.ndarray, what: str) -> None:
    """Refuse, naming the first bad file, when any of ``paths`` is not a complete image. Reads two
    small blocks per file, so a run stops here rather than in the middle of an epoch."""
    bad = [(p, problem) for p in paths if (problem := image_file_problem(p)) is not None]
    if bad:
        path, problem = bad[0]
        more = f" (and {len(bad) - 1} more bad {what} image(s))" if len(bad) > 1 else ""
        raise DataError(f"{what} image {path}: {problem}{more}; replace the file or drop it from the data")
