"""One pass over the image files for the EDA: bytes hashed while read, decoded, measured, checked.

Nothing here raises on a bad file: an empty, truncated or undecodable image is a finding of the
EDA, recorded in the ``status`` column, not a reason to stop.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from imgclf.data.decode import opencv_to_rgb, pil_to_rgb
from imgclf.data.images import image_format, truncation_problem
from imgclf.eda.formats import describe_header
from imgclf.errors import DataError

EXT_KIND = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff",
            ".webp": "webp"}
# Statuses that make a file useless for training (reported as corrupt / unreadable / zero-byte).
BAD_STATUSES = ("empty", "missing", "unreadable", "truncated")
THUMB_SIDE = 64
STATS_SIDE = 256  # big JPEGs are decoded at a reduced scale that keeps at least this side

cv2.setLogLevel(2)  # OpenCV's own WARN lines would bury the progress bar; the report lists every bad file


def sniff_kind(data: bytes) -> str:
    """The file type its first bytes declare (extensions lie: a .png may hold a JPEG)."""
    if not data:
        return "empty"
    return image_format(data[:16]) or ("gif" if data.startswith(b"GIF8") else "unknown")


def _thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)


def inspect_file(path: Path, want_thumb: bool = False) -> tuple[dict, np.ndarray | None]:
    """Everything the EDA needs from one file, read once; never raises for a bad file."""
    row: dict = {"ext": path.suffix.lower(), "bytes": 0, "md5": "", "kind": "", "status": "ok",
                 "height": np.nan, "width": np.nan, "channels": np.nan, "dtype": "", "mode": "",
                 "orientation": 1, "alpha": False, "bits": np.nan,
                 "mean_r": np.nan, "mean_g": np.nan, "mean_b": np.nan,
                 "std_r": np.nan, "std_g": np.nan, "std_b": np.nan}
    try:
        data = path.read_bytes()
    except OSError as exc:
        row.update(status="missing", error=exc.strerror or str(exc))
        return row, None
    row.update(bytes=len(data), kind=sniff_kind(data))
    if not data:
        row["status"] = "empty"
        return row, None
    row["md5"] = hashlib.md5(data, usedforsecurity=False).hexdigest()
    try:
        rgb = _decode_for_stats(data, row)
    except DataError as exc:
        cut = truncation_problem(row["kind"], data[-1024:], path)
        row.update(status="truncated" if cut else "unreadable", error=cut or str(exc)[:120])
        return row, None
    if truncation_problem(row["kind"], data[-1024:], path):
        row["status"] = "truncated"
    mean, std = cv2.meanStdDev(rgb)  # what the model will see: oriented, 8-bit RGB
    for i, channel in enumerate("rgb"):
        row[f"mean_{channel}"] = float(mean[i, 0]) / 255.0
        row[f"std_{channel}"] = float(std[i, 0]) / 255.0
    return row, (_thumbnail(rgb) if want_thumb else None)


def _decode_for_stats(data: bytes, row: dict) -> np.ndarray:
    """Fills the format columns of ``row`` from the header; decodes at a reduced scale (statistics
    do not need 24 megapixels). Raises DataError when nothing can decode the bytes."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            row.update(describe_header(image))
            image.draft(None, (STATS_SIDE, STATS_SIDE))
            return pil_to_rgb(ImageOps.exif_transpose(image))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if array is None:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot decode ({reason})") from None
        channels = 1 if array.ndim == 2 else array.shape[2]
        row.update(height=array.shape[0], width=array.shape[1], channels=channels, dtype=str(array.dtype),
                   mode=f"opencv:{channels}ch", alpha=channels in (2, 4), bits=8 * array.dtype.itemsize)
        return opencv_to_rgb(array)


def scan_split(frame: pd.DataFrame, split: str, data_dir: Path, thumb_ids: Iterable[str] = (),
               workers: int | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Inspect every file of ``frame`` (columns id, path and maybe label/group): one row per file.

    Decoding runs in threads (Pillow and OpenCV release the GIL); rows keep ``frame``'s order.
    """
    wanted = set(thumb_ids)
    workers = workers or min(8, os.cpu_count() or 1)
    paths = [Path(p) for p in frame["path"]]
    ids = frame["id"].astype(str).tolist()
    jobs = [(p, i in wanted) for p, i in zip(paths, ids, strict=True)]
    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(lambda job: inspect_file(*job), jobs), total=len(jobs),
                            desc=f"scan {split}", unit="img", mininterval=1.0, leave=False))
    rows = []
    thumbs: dict[str, np.ndarray] = {}
    for image_id, path, (row, thumb) in zip(ids, paths, results, strict=True):
        rows.append({"split": split, "id": image_id, "file": _relative(path, data_dir), **row})
        if thumb is not None:
            thumbs[image_id] = thumb
    scanned = pd.DataFrame(rows)
    if "error" not in scanned.columns:
        scanned["error"] = ""
    scanned["error"] = scanned["error"].fillna("")
    for column in ("label", "group"):
        if column in frame.columns:
            scanned[column] = frame[column].to_numpy()
    return scanned, thumbs


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
