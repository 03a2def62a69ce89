"""The EDA's file scan: channels and bit depths read as the decoder sees them, truncation found."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from imgclf.data.images import truncation_problem
from imgclf.eda.scan import inspect_file


def test_scan_reads_channels_and_bit_depth(tmp_path: Path) -> None:
    gray16 = (np.arange(24 * 40, dtype=np.uint16).reshape(24, 40) * 60)
    cv2.imwrite(str(tmp_path / "g.png"), gray16)
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 2], rgba[..., 3] = 255, 255  # opaque red in BGR(A)
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    (tmp_path / "fake.png").write_bytes(cv2.imencode(".jpg", rgba[..., :3])[1].tobytes())

    row, thumb = inspect_file(tmp_path / "g.png", want_thumb=True)
    assert (row["height"], row["width"], row["channels"], row["dtype"]) == (24, 40, 1, "uint16")
    assert thumb is not None and thumb.shape == (38, 64, 3)
    row, _ = inspect_file(tmp_path / "a.png")
    assert (row["channels"], row["mean_r"], row["mean_b"]) == (4, 1.0, 0.0)
    row, _ = inspect_file(tmp_path / "fake.png")
    assert (row["kind"], row["status"]) == ("jpeg", "ok")
    row, _ = inspect_file(tmp_path / "gone.png")
    assert row["status"] == "missing"

    jpeg = tmp_path / "fake.png"
    (tmp_path / "cut.jpg").write_bytes(jpeg.read_bytes()[:-40])
    assert truncation_problem("jpeg", jpeg.read_bytes()[-1024:], jpeg) is None
    assert "truncated" in truncation_problem("jpeg", (tmp_path / "cut.jpg").read_bytes()[-1024:],
                                             tmp_path / "cut.jpg")
    png = (tmp_path / "a.png").read_bytes()
    assert truncation_problem("png", png[-1024:], "a.png") is None
    assert "truncated PNG" in truncation_problem("png", png[:-20][-1024:], "a.png")
    (tmp_path / "cut.jpg").write_bytes(jpeg.read_bytes()[:len(jpeg.read_bytes()) // 2])
    row, _ = inspect_file(tmp_path / "cut.jpg")
    assert row["status"] == "truncated"
