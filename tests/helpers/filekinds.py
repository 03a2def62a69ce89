"""Every image file kind competitions ship, written from an RGB array so that its displayed pixels
are (up to compression) that array: EXIF-rotated phone JPEGs, CMYK, progressive, palette and
transparent PNGs, 16-bit, BMP, TIFF, WebP, odd extensions and file names; and CSVs as they come."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from tests.helpers.datasets import draw_class_image

# EXIF orientation -> the transpose that stores an image so that exif_transpose shows it upright
_STORED = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _save_exif(rgb: np.ndarray, path: Path, orientation: int) -> None:
    Image.fromarray(rgb).transpose(_STORED[orientation]).save(path, quality=95, exif=_exif(orientation))


def _save_16bit(rgb: np.ndarray, path: Path) -> None:
    cv2.imwrite(str(path), rgb[..., ::-1].astype(np.uint16) * 257)


def _save_rgba(rgb: np.ndarray, path: Path) -> None:
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "RGBA").save(path)


# kind -> (file name suffix, writer); the suffix carries the extension as the file will have it
KINDS = {
    "exif6": (".jpg", lambda a, p: _save_exif(a, p, 6)),
    "exif8": (".jpeg", lambda a, p: _save_exif(a, p, 8)),
    "exif3": (".JPG", lambda a, p: _save_exif(a, p, 3)),
    "cmyk": (".jpg", lambda a, p: Image.fromarray(a).convert("CMYK").save(p, quality=95)),
    "progressive": (".jpg", lambda a, p: Image.fromarray(a).save(p, progressive=True, quality=95)),
    "palette": (".png", lambda a, p: Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE).save(p)),
    "rgba": (".Png", _save_rgba),
    "gray": (".png", lambda a, p: Image.fromarray(a).convert("L").save(p)),
    "png16": (".png", _save_16bit),
    "bmp": (".bmp", lambda a, p: Image.fromarray(a).save(p)),
    "tiff": (".tif", lambda a, p: Image.fromarray(a).save(p)),
    "webp": (".webp", lambda a, p: Image.fromarray(a).save(p, lossless=True)),
}


def save_kind(kind: str, rgb: np.ndarray, folder: Path, stem: str) -> str:
    """Write ``rgb`` as ``kind`` into ``folder``; returns the file name."""
    suffix, write = KINDS[kind]
    name = stem + suffix
    write(rgb, folder / name)
    return name


def write_csv_as_it_comes(frame: pd.DataFrame, path: Path, pad: bool = True) -> None:
    """UTF-8 with a byte-order mark, CRLF line ends, every field quoted, and (``pad``) spaces after
    the values and column names, as a hand-edited spreadsheet export has them."""
    padded = frame.astype(str)
    if pad:
        padded = padded.apply(lambda column: column + "  ").rename(columns=lambda c: f"{c} ")
    padded.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n", quoting=1)


CLASSES = ("cat", "dog", "fox")


def make_mixed_competition(root: Path, n_train: int = 72, n_test: int = 24) -> Path:
    """A Kaggle layout whose images cycle through ``KINDS`` and whose ids are numbers with leading
    zeros, names with spaces and non-ASCII names; CSVs as they come; solution.csv beside them."""
    rng = np.random.default_rng(0)
    kinds = list(KINDS)
    rows = {"train": [], "test": []}
    for split, count in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            label = i % len(CLASSES)
            rgb = draw_class_image(label, rng, 32)[..., ::-1].copy()
            number = i + (500 if split == "test" else 0)
            stem = (f"{number:04d}", f"photo {number}", f"фото_{number}é")[i % 3]  # '0007' stays a string
            save_kind(kinds[i % len(kinds)], rgb, root / split, stem)
            rows[split].append({"id": stem, "label": CLASSES[label]})
    write_csv_as_it_comes(pd.DataFrame(rows["train"]), root / "train.csv")
    test = pd.DataFrame(rows["test"])
    write_csv_as_it_comes(test.assign(label=CLASSES[0]), root / "sample_submission.csv", pad=False)
    test.to_csv(root / "solution.csv", index=False)
    return root
