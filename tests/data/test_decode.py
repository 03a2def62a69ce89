"""Decoding every file kind competitions ship, compared pixel for pixel with Pillow's reference decode
(``ImageOps.exif_transpose(Image.open(f)).convert("RGB")``) on files the tests write."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from imgclf.data.decode import ALPHA_BACKGROUND, read_image
from imgclf.data.images import check_image_files, read_resized
from imgclf.errors import DataError


def reference(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def photo(height: int = 24, width: int = 40) -> np.ndarray:
    """An asymmetric colour picture, so a wrong turn or flip or channel order shows."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 255 // width, y * 255 // height, (x + 2 * y) % 256]).astype(np.uint8)


def on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(float) / 255
    return (rgba[..., :3] * alpha + np.array(ALPHA_BACKGROUND) * (1 - alpha)).round()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / f"phone_{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo()).save(path, quality=95, exif=exif)
    decoded = read_image(path)
    assert np.array_equal(decoded, reference(path))
    if orientation in (6, 8):  # stored sideways: displayed portrait
        assert decoded.shape == (40, 24, 3)


@pytest.mark.parametrize("kind", ["cmyk_jpeg", "progressive_jpeg", "palette_png", "bmp", "tiff",
                                  "webp_lossless", "gray_jpeg", "cmyk_tiff", "bilevel_png"])
def test_8_bit_kinds_equal_pillow(tmp_path: Path, kind: str) -> None:
    rgb = Image.fromarray(photo())
    writers = {
        "cmyk_jpeg": ("jpg", lambda p: rgb.convert("CMYK").save(p, quality=95)),
        "progressive_jpeg": ("jpg", lambda p: rgb.save(p, progressive=True, quality=90)),
        "palette_png": ("png", lambda p: rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(p)),
        "bmp": ("bmp", lambda p: rgb.save(p)),
        "tiff": ("tif", lambda p: rgb.save(p)),
        "webp_lossless": ("webp", lambda p: rgb.save(p, lossless=True)),
        "gray_jpeg": ("jpg", lambda p: rgb.convert("L").save(p)),
        "cmyk_tiff": ("tiff", lambda p: rgb.convert("CMYK").save(p)),
        "bilevel_png": ("png", lambda p: rgb.convert("1").save(p)),
    }
    ext, write = writers[kind]
    path = tmp_path / f"{kind}.{ext}"
    write(path)
    decoded = read_image(path)
    assert decoded.dtype == np.uint8 and decoded.shape == (24, 40, 3)
    assert np.array_equal(decoded, reference(path))
    if kind == "cmyk_jpeg":  # Adobe's inverted CMYK: the colours must not come out inverted
        assert np.abs(decoded.astype(int) - photo()).mean() < 12


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.dstack([photo(), np.tile(np.linspace(0, 255, 40).astype(np.uint8), (24, 1))])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    gray_alpha = np.dstack([photo()[..., 0], rgba[..., 3]])
    Image.fromarray(gray_alpha, "LA").save(tmp_path / "la.png")
    palette = Image.fromarray(photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "trns.png", transparency=0)

    assert np.abs(read_image(tmp_path / "rgba.png") - on_white(rgba)).max() <= 1
    expected_la = on_white(np.dstack([np.repeat(gray_alpha[..., :1], 3, 2), gray_alpha[..., 1:]]))
    assert np.abs(read_image(tmp_path / "la.png") - expected_la).max() <= 1
    with Image.open(tmp_path / "trns.png") as image:
        composed = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)),
                                         image.convert("RGBA"))
    assert np.array_equal(read_image(tmp_path / "trns.png"), np.asarray(composed.convert("RGB")))
    transparent = np.asarray(palette) == 0
    assert transparent.any() and (read_image(tmp_path / "trns.png")[transparent] == 255).all()


def test_high_bit_depth_and_float_are_scaled(tmp_path: Path) -> None:
    gray16 = (np.arange(24 * 40, dtype=np.uint32).reshape(24, 40) * 68).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "gray16.png"), gray16)
    rgb16 = (photo().astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])
    cv2.imwrite(str(tmp_path / "rgb16.tif"), rgb16[..., ::-1])  # Pillow has no 48-bit TIFF mode
    unit = np.linspace(0, 1, 24 * 40, dtype=np.float32).reshape(24, 40)
    Image.fromarray(unit, "F").save(tmp_path / "unit.tif")
    Image.fromarray(unit * 1000, "F").save(tmp_path / "wide.tif")

    assert np.array_equal(read_image(tmp_path / "gray16.png")[..., 0], (gray16 >> 8).astype(np.uint8))
    for name in ("rgb16.png", "rgb16.tif"):
        assert np.array_equal(read_image(tmp_path / name), photo()), name
    expected = (unit * 255).round().astype(np.uint8)
    assert np.array_equal(read_image(tmp_path / "unit.tif")[..., 0], expected)
    assert np.abs(read_image(tmp_path / "wide.tif")[..., 0].astype(int) - expected).max() <= 1


@pytest.mark.parametrize("name", ["UPPER.JPG", "Mixed.Png", "with space.png", "naïve été 写真.jpg",
                                  "007.png"])
def test_names_and_extensions_as_they_come(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    Image.fromarray(photo()).save(path, format="JPEG" if name.lower().endswith("jpg") else "PNG")
    assert np.array_equal(read_image(path), reference(path))


def test_big_jpeg_is_decoded_at_a_reduced_scale(tmp_path: Path) -> None:
    big = cv2.resize(photo(), (3200, 2000), interpolation=cv2.INTER_LINEAR)
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, quality=90)
    reduced = read_image(path, min_side=64)
    assert reduced.shape == (250, 400, 3)  # 1/8 scale: the smallest that keeps both sides >= 64
    assert read_image(path, min_side=400).shape == (500, 800, 3)  # 1/4: at 1/8 the short side is 250
    full = cv2.resize(reference(path), (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(read_resized(path, 64).astype(int) - full).mean() < 2.0


def test_unusable_files_are_one_clear_error(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    Image.fromarray(photo()).save(good)
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPjunk")
    with pytest.raises(DataError, match="empty.*empty.png|empty.png.*empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(DataError, match="cannot decode.*junk.webp"):
        read_image(tmp_path / "junk.webp")
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "gone.png")
    with pytest.raises(DataError, match=r"cut\.jpg: truncated"):
        check_image_files([good, tmp_path / "cut.jpg"], "train")
    check_image_files([good], "train")
