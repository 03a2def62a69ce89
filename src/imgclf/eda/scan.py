"""One pass over the image files for the EDA: bytes hashed while read, decoded, measured, checked.

Nothing here raises on a bad file: an empty, truncated or undecodable image is a finding of the
EDA, recorded in the ``status`` column, not a reason to stop.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from imgclf.data.images import image_format, to_rgb_uint8

EXT_KIND = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff",
            ".webp": "webp"}
# Statuses that make a file useless for training (reported as corrupt / unreadable / zero-byte).
BAD_STATUSES = ("empty", "missing", "unreadable", "truncated")
THUMB_SIDE = 64

cv2.setLogLevel(2)  # OpenCV's own WARN lines would bury the progress bar; the report lists every bad file


def sniff_kind(data: bytes) -> str:
    """The file type its first bytes declare (extensions lie: a .png may hold a JPEG)."""
    if not data:
        return "empty"
    return image_format(data[:16]) or ("gif" if data.startswith(b"GIF8") else "unknown")


def is_truncated(data: bytes, kind: str) -> bool:
    """A JPEG without its end-of-image marker or a PNG without its IEND chunk was cut short.

    Some decoders return a half-grey image for such files instead of failing, so the end marker is
    checked even when decoding succeeds. (0xFFD9 cannot occur inside JPEG entropy-coded data.)
    """
    if kind == "jpeg":
        return b"\xff\xd9" not in data[-1024:]
    if kind == "png":
        return b"IEND" not in data[-64:]
    return False


def _thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)


def inspect_file(path: Path, want_thumb: bool = False) -> tuple[dict, np.ndarray | None]:
    """Everything the EDA needs from one file, read once; never raises for a bad file."""
    row: dict = {"ext": path.suffix.lower(), "bytes": 0, "md5": "", "kind": "", "status": "ok",
                 "height": np.nan, "width": np.nan, "channels": np.nan, "dtype": "",
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
    # The same flag as cv2.imread(path, IMREAD_UNCHANGED), decoded from the bytes already in memory.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        row["status"] = "unreadable"
        return row, None
    if is_truncated(data, row["kind"]):
        row["status"] = "truncated"
    row.update(height=image.shape[0], width=image.shape[1], channels=1 if image.ndim == 2 else image.shape[2],
               dtype=str(image.dtype))
    rgb = to_rgb_uint8(image)  # what the model will see: bit depth and channels normalised
    mean, std = cv2.meanStdDev(rgb)
    for i, channel in enumerate("rgb"):
        row[f"mean_{channel}"] = float(mean[i, 0]) / 255.0
        row[f"std_{channel}"] = float(std[i, 0]) / 255.0
    return row, (_thumbnail(rgb) if want_thumb else None)


def scan_split(frame: pd.DataFrame, split: str, data_dir: Path, thumb_ids: Iterable[str] = (),
               workers: int | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Inspect every file of ``frame`` (columns id, path and maybe label/group): one row per file.

    Decoding runs in threads (OpenCV releases the GIL); rows keep ``frame``'s order.
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
