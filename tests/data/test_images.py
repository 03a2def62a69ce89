"""Decoding image files: RGB order, grey/RGBA/16-bit to RGB uint8 (alpha on white), bad files refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from imgclf.data.images import read_image, read_resized
from imgclf.errors import DataError
from imgclf.training.dataset import ImageDataset
from tests.helpers.datasets import RED_BGR


def test_pure_red_decodes_in_rgb_order(tmp_path):
    for ext in (".png", ".jpg", ".bmp"):
        path = tmp_path / f"red{ext}"
        cv2.imwrite(str(path), np.full((8, 8, 3), RED_BGR, np.uint8))
        image = read_image(path)
        assert image.shape == (8, 8, 3) and image.dtype == np.uint8
        assert np.abs(image[4, 4].astype(int) - [255, 0, 0]).max() <= 2, ext  # jpg is lossy
    item, label, row = ImageDataset([tmp_path / "red.png"], np.array([1]), 8)[0]
    assert item.dtype == torch.uint8 and item.shape == (8, 8, 3) and item[0, 0].tolist() == [255, 0, 0]
    assert (label, row) == (1, 0)


def test_grayscale_rgba_and_16_bit_become_rgb_uint8(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., :3], bgra[..., 3] = RED_BGR, 128
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    cv2.imwrite(str(tmp_path / "gray16.png"), np.full((8, 8), 100 * 256 + 7, np.uint16))
    bgr16 = np.zeros((8, 8, 3), np.uint16)
    bgr16[..., 2] = 65535  # red at full 16-bit scale
    cv2.imwrite(str(tmp_path / "red16.png"), bgr16)
    Image.fromarray(np.dstack([gray, np.full_like(gray, 200)]), "LA").save(tmp_path / "gray_alpha.png")

    decoded = {name: read_image(tmp_path / f"{name}.png")
               for name in ("gray", "rgba", "gray16", "red16", "gray_alpha")}
    for name, image in decoded.items():
        assert image.shape == (8, 8, 3) and image.dtype == np.uint8, name
    assert np.array_equal(decoded["gray"], np.repeat(gray[..., None], 3, axis=2))
    on_white = (gray * (200 / 255) + 255 * (55 / 255)).round()
    assert np.abs(decoded["gray_alpha"][..., 0] - on_white).max() <= 1
    assert decoded["rgba"][0, 0].tolist() == [255, 127, 127]  # half-transparent red on white, RGB order
    assert np.all(decoded["gray16"] == 100)  # the high byte
    assert decoded["red16"][0, 0].tolist() == [255, 0, 0]


def test_unreadable_images_are_data_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(DataError, match="cannot decode.*junk.jpg"):
        read_image(tmp_path / "junk.jpg")
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "gone.png")


def test_read_resized_gives_the_square_side(tmp_path):
    cv2.imwrite(str(tmp_path / "wide.png"), np.zeros((20, 40, 3), np.uint8))
    assert read_resized(tmp_path / "wide.png", 16).shape == (16, 16, 3)
    assert read_resized(tmp_path / "wide.png", 64).shape == (64, 64, 3)
