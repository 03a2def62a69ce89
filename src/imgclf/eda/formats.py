"""File formats in the EDA: what each file is (mode, orientation, alpha, bit depth, size) and what
decoding will convert, and how (the rules of ``data.decode``)."""

from __future__ import annotations

import pandas as pd
from PIL import Image

from imgclf.data.decode import ALPHA_BACKGROUND

BIG_SIDE = 2048  # a long side above this is decoded at a reduced scale (JPEG) before resizing
_DTYPES = {"I;16": "uint16", "I;16B": "uint16", "I;16L": "uint16", "I;16N": "uint16", "I": "int32",
           "F": "float32"}
_BITS = {"1": 1, "uint16": 16, "int32": 32, "float32": 32}
_TRANSPARENT = ("RGBA", "LA", "PA", "RGBa", "La")


def describe_header(image: Image.Image) -> dict:
    """The format columns of one opened (not yet loaded) Pillow image; width and height as
    displayed, after EXIF orientation."""
    width, height = image.size
    # before getexif: for a PNG it may load the pixels, which empties ``tile``
    rawmode = image.tile[0].args if image.tile and isinstance(image.tile[0].args, str) else ""
    orientation = int(image.getexif().get(0x0112, 1) or 1)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    dtype = _DTYPES.get(image.mode, "uint8")
    bits = 16 if ";16" in rawmode else _BITS.get(dtype if image.mode != "1" else "1", 8)
    alpha = image.mode in _TRANSPARENT or (image.mode == "P" and "transparency" in image.info)
    return {"height": height, "width": width, "channels": len(image.getbands()), "dtype": dtype,
            "mode": image.mode, "orientation": orientation, "alpha": bool(alpha), "bits": bits}


def format_counts(files: pd.DataFrame) -> dict[str, int]:
    """How many decoded files fall in each category that decoding treats specially."""
    ok = files[files["height"].notna()]
    long_side = ok[["height", "width"]].max(axis=1)
    return {
        "exif_rotated": int((ok["orientation"] != 1).sum()),
        "cmyk": int(ok["mode"].isin(["CMYK"]).sum()),
        "ycck_or_other_colour_space": int(ok["mode"].isin(["YCbCr", "LAB", "HSV"]).sum()),
        "palette": int((ok["mode"] == "P").sum()),
        "alpha": int(ok["alpha"].astype(bool).sum()),
        "grayscale": int(ok["mode"].isin(["L", "1", "LA", "I", "I;16", "I;16B", "I;16L", "F"]).sum()),
        "high_bit_depth": int(((ok["bits"] > 8) & (ok["dtype"] != "float32")).sum()),
        "float": int((ok["dtype"] == "float32").sum()),
        "big": int((long_side > BIG_SIDE).sum()),
    }


_HOW = {
    "exif_rotated": "EXIF Orientation tag other than 1: turned/flipped upright before anything else",
    "cmyk": "CMYK JPEG/TIFF: converted to RGB by Pillow (Adobe inverted CMYK included)",
    "ycck_or_other_colour_space": "YCbCr/YCCK/LAB/HSV: converted to RGB by Pillow",
    "palette": "palette (P) images: expanded to RGB",
    "alpha": "transparency: composited on a white background {bg}",
    "grayscale": "grayscale: the grey channel repeated into R, G and B",
    "high_bit_depth": "16-bit (or more): the high byte kept (value >> 8)",
    "float": "float pixels: read as 0..1 (scaled to their maximum when it exceeds 1)",
    "big": f"long side over {BIG_SIDE} px: decoded at a reduced scale (JPEG) and cached resized, once",
}


def conversion_notes(files: pd.DataFrame) -> list[str]:
    """One line per category present: how many files, and what decoding does to them."""
    counts = format_counts(files)
    return [f"{n} file(s) — {_HOW[key].format(bg=ALPHA_BACKGROUND)}" for key, n in counts.items() if n]
