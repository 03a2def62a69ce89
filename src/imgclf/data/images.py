"""Image files: finding them on disk and decoding them with OpenCV into RGB uint8."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

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


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an HxWx3 RGB uint8 array (grayscale, RGBA and 16-bit handled)."""
    path = str(path)
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        if not os.path.exists(path):
            raise DataError(f"image file not found: {path}")
        if os.path.getsize(path) == 0:
            raise DataError(f"image file is empty (0 bytes): {path}")
        raise DataError(f"cannot decode image file (corrupt or not an image): {path}")
    return to_rgb_uint8(image)


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        scaled = image.astype(np.float32)
        top = float(scaled.max()) or 1.0
        image = (scaled * (255.0 / top) if top > 1.0 else scaled * 255.0).clip(0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_resized(path: str | Path, side: int) -> np.ndarray:
    """Decode and resize to ``side``x``side`` (area interpolation when shrinking)."""
    image = read_image(path)
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
    if kind == "png" and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk at its end)"
    if kind == "jpeg" and not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return _decode_problem(path)  # no end marker: usually cut short, but some cameras append data
    return None


def _decode_problem(path: str | Path) -> str | None:
    # Pillow (a matplotlib dependency) reports truncation, OpenCV does not; only this check needs it
    from PIL import Image

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
