"""The crop plan of a competition: ``data.crop`` and, for ``boxes``, the boxes CSV matched to images.

A boxes CSV has an id column (the first column, or one named ``id``/``image_id``/``image``) and
either ``x, y, w, h`` (also ``width``/``height``) or ``xmin, ymin, xmax, ymax``, in pixels of the
image as displayed (after EXIF orientation). An image with several rows gets the box around all of
them; an image with none falls back to the centre crop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.config.sections import DataConfig
from imgclf.data.competition import Competition
from imgclf.data.crop import Box, CropPlan
from imgclf.data.tables import read_csv_strings
from imgclf.errors import DataError

_XYWH = (("x", "y", "w", "h"), ("x", "y", "width", "height"))
_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def competition_crop(data: DataConfig, comp: Competition) -> CropPlan:
    """``crop_plan`` of a loaded competition (its train and test images)."""
    return crop_plan(data, comp.data_dir, [comp.train, comp.test])


def crop_plan(data: DataConfig, data_dir: Path, tables: list[pd.DataFrame]) -> CropPlan:
    """The plan for ``data.crop``; ``tables`` (id, path columns) map the CSV's ids to image files."""
    if data.crop != "boxes":
        return CropPlan(data.crop, data.crop_fraction, data.crop_margin)
    if data.boxes_csv is None:
        raise DataError("data.crop=boxes needs data.boxes_csv (a CSV of id,x,y,w,h)")
    csv = data.boxes_csv if data.boxes_csv.is_absolute() else data_dir / data.boxes_csv
    boxes = read_boxes(csv)
    by_id = {str(i).strip(): str(p)
             for table in tables for i, p in zip(table["id"], table["path"], strict=True)}
    by_stem = {Path(p).stem: p for p in by_id.values()}
    matched = {}
    for image_id, box in boxes.items():
        path = by_id.get(image_id) or by_id.get(Path(image_id).stem) or by_stem.get(Path(image_id).stem)
        if path is not None:
            matched[path] = box
    if not matched:
        raise DataError(f"{csv}: none of its ids names a train or test image (e.g. '{next(iter(boxes))}')")
    return CropPlan("boxes", data.crop_fraction, data.crop_margin, matched)


def read_boxes(csv: Path) -> dict[str, Box]:
    """id -> (x, y, w, h), one box per id (the union of its rows)."""
    frame = read_csv_strings(csv, "data.boxes_csv")
    columns = {c.lower(): c for c in frame.columns}
    id_column = next((columns[c] for c in ("id", "image_id", "image") if c in columns), frame.columns[0])
    names = next((n for n in _XYWH if all(c in columns for c in n)), None)
    corners = all(c in columns for c in _CORNERS)
    if names is None and not corners:
        raise DataError(f"{csv}: needs columns x,y,w,h (or xmin,ymin,xmax,ymax); "
                        f"it has {list(frame.columns)}")
    try:
        values = frame[[columns[c] for c in (names or _CORNERS)]].astype(float).to_numpy()
    except ValueError as exc:
        raise DataError(f"{csv}: a box coordinate is not a number ({exc})") from None
    if names is not None:
        values[:, 2:] += values[:, :2]  # to corners
    if np.isnan(values).any() or (values[:, 2:] <= values[:, :2]).any():
        row = int(np.argmax(np.isnan(values).any(1) | (values[:, 2:] <= values[:, :2]).any(1)))
        raise DataError(f"{csv} row {row + 2}: empty or missing box {frame.iloc[row].tolist()}")
    boxes: dict[str, Box] = {}
    for image_id, (x0, y0, x1, y1) in zip(frame[id_column].astype(str), values, strict=True):
        if image_id in boxes:
            px, py, pw, ph = boxes[image_id]
            x0, y0, x1, y1 = min(x0, px), min(y0, py), max(x1, px + pw), max(y1, py + ph)
        boxes[image_id] = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
    return boxes
