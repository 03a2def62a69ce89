"""Crops before resizing: centre, boxes from a CSV (also on a reduced-scale JPEG decode), faces on a
real photograph (matplotlib's bundled portrait of Grace Hopper), and the cache key that follows them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from matplotlib import cbook
from PIL import Image

from imgclf.config.sections import DataConfig
from imgclf.data.boxes import crop_plan, read_boxes
from imgclf.data.crop import CropPlan, find_face
from imgclf.data.images import read_cropped, read_resized
from imgclf.errors import DataError
from imgclf.training.dataset import files_fingerprint

PORTRAIT = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def quadrants(side: int) -> np.ndarray:
    """Four flat colours, one per quadrant: a crop shows which part of the picture it kept."""
    image = np.zeros((side, side, 3), np.uint8)
    half = side // 2
    image[:half, :half], image[:half, half:] = (255, 0, 0), (0, 255, 0)
    image[half:, :half], image[half:, half:] = (0, 0, 255), (255, 255, 0)
    return image


def test_center_crop_keeps_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "q.png"
    image = quadrants(40)
    image[10:30, 10:30] = (9, 99, 199)
    Image.fromarray(image).save(path)
    crop = CropPlan("center", fraction=0.5)
    assert np.array_equal(read_resized(path, 20, crop), np.full((20, 20, 3), (9, 99, 199), np.uint8))
    assert not read_cropped(path, 20, crop)[1]


def test_boxes_from_a_csv_crop_each_image_even_at_a_reduced_decode(tmp_path: Path) -> None:
    big = cv2.resize(quadrants(64), (3200, 3200), interpolation=cv2.INTER_NEAREST)
    Image.fromarray(big).save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(quadrants(64)).save(tmp_path / "b.png")
    Image.fromarray(quadrants(64)).save(tmp_path / "c.png")
    pd.DataFrame({"image_id": ["a", "b.png"], "x": [1700, 2], "y": [1700, 34], "w": [1400, 28],
                  "h": [1400, 28]}).to_csv(tmp_path / "boxes.csv", index=False)
    files = [str(tmp_path / name) for name in ("a.jpg", "b.png", "c.png")]
    table = pd.DataFrame({"id": ["a", "b", "c"], "path": files})
    data = DataConfig(crop="boxes", boxes_csv=Path("boxes.csv"), crop_margin=0.0, crop_fraction=0.5)
    plan = crop_plan(data, tmp_path, [table])

    yellow = read_resized(tmp_path / "a.jpg", 16, plan)  # bottom-right quadrant of a 3200 px JPEG
    assert np.abs(yellow.astype(int) - (255, 255, 0)).max() < 12
    blue, fell_back = read_cropped(tmp_path / "b.png", 16, plan)
    assert blue.shape == (28, 28, 3) and (blue == (0, 0, 255)).all() and not fell_back
    centre, fell_back = read_cropped(tmp_path / "c.png", 16, plan)  # no box: the centre crop
    assert centre.shape == (32, 32, 3) and fell_back


def test_a_bad_boxes_csv_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "nocols.csv").write_text("id,left,top\na,1,2\n")
    (tmp_path / "empty_box.csv").write_text("id,xmin,ymin,xmax,ymax\na,5,5,5,9\n")
    with pytest.raises(DataError, match="nocols.csv: needs columns x,y,w,h"):
        read_boxes(tmp_path / "nocols.csv")
    with pytest.raises(DataError, match="empty_box.csv row 2: empty or missing box"):
        read_boxes(tmp_path / "empty_box.csv")
    with pytest.raises(DataError, match="data.boxes_csv"):
        crop_plan(DataConfig(crop="boxes"), tmp_path, [])
    two_rows = tmp_path / "two.csv"
    two_rows.write_text("id,xmin,ymin,xmax,ymax\na,0,0,4,4\na,10,2,12,20\n")
    assert read_boxes(two_rows) == {"a": (0.0, 0.0, 12.0, 20.0)}  # one box around both


def test_faces_are_found_on_a_real_photo_and_the_rest_falls_back(tmp_path: Path) -> None:
    portrait = np.asarray(Image.open(PORTRAIT).convert("RGB"))
    canvas = np.full((1200, 1600, 3), 90, np.uint8)
    canvas[500:1100, 900:1412] = portrait  # the face lies well right of and below the centre
    Image.fromarray(canvas).save(tmp_path / "scene.jpg", quality=95)
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(tmp_path / "wall.png")
    x, y, w, h = find_face(portrait)
    assert 100 < x + w / 2 < 400 and 100 < y + h / 2 < 400 and w > 100

    plan = CropPlan("faces", fraction=0.8, margin=0.25)
    face, fell_back = read_cropped(tmp_path / "scene.jpg", 64, plan)
    # decoded at 1/4 scale (a 300x400 scene): the face and its margin, about 90 px, no background
    assert not fell_back and 64 <= face.shape[0] < 130 and face.shape[0] == face.shape[1]
    assert (np.abs(face.astype(int) - 90).max(axis=2) <= 3).mean() < 0.02
    wall, fell_back = read_cropped(tmp_path / "wall.png", 64, plan)
    assert fell_back and wall.shape == (240, 320, 3)


def test_the_crop_is_part_of_the_cache_key(tmp_path: Path) -> None:
    Image.fromarray(quadrants(16)).save(tmp_path / "q.png")
    files = [tmp_path / "q.png"]
    keys = {files_fingerprint(files, 16, plan) for plan in
            (None, CropPlan(), CropPlan("center", 0.5), CropPlan("center", 0.6), CropPlan("faces"),
             CropPlan("faces", margin=0.5), CropPlan("boxes", boxes={str(files[0]): (0, 0, 4, 4)}))}
    assert len(keys) == 6  # None and the default plan (no crop) share one key
