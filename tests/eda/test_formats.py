"""The EDA reports every file kind and what decoding converts, and shows the crop with its fallbacks."""

from __future__ import annotations

from pathlib import Path

from imgclf.eda.run import run_eda
from tests.helpers.datasets import load_fixture
from tests.helpers.filekinds import KINDS, make_mixed_competition


def test_every_kind_is_counted_and_its_conversion_named(tmp_path: Path, fast_cfg) -> None:
    data = make_mixed_competition(tmp_path / "kinds", n_train=2 * len(KINDS), n_test=len(KINDS))
    comp, paths = load_fixture(fast_cfg, data, "data.crop=center", "data.crop_fraction=0.5")
    summary = run_eda(fast_cfg(data, "data.crop=center", "data.crop_fraction=0.5"), paths, comp)

    formats = summary["train"]["formats"]  # two files of each kind in train
    assert formats["exif_rotated"] == 6 and formats["cmyk"] == 2 and formats["palette"] == 2
    assert formats["alpha"] == 2 and formats["high_bit_depth"] == 2 and formats["grayscale"] == 2
    assert summary["train"]["modes"]["CMYK"] == 2 and summary["test"]["formats"]["exif_rotated"] == 3
    assert summary["bad_files"] == []
    report = paths.eda_report_md.read_text()
    for note in ("6 file(s) — EXIF Orientation", "2 file(s) — CMYK", "composited on a white background",
                 "2 file(s) — 16-bit"):
        assert note in report, note
    assert any("converted on decoding" in flag for flag in summary["flags"])
    crop = summary["crop"]
    assert (crop["mode"], crop["checked"], crop["fell_back"]) == ("center", 3 * len(KINDS), 0)
    assert "## Crop (data.crop=center)" in report and paths.eda_file("crops.png").stat().st_size > 5000


def test_no_crop_no_crop_section(tmp_path: Path, fast_cfg) -> None:
    data = make_mixed_competition(tmp_path / "plain", n_train=12, n_test=6)
    comp, paths = load_fixture(fast_cfg, data)
    summary = run_eda(fast_cfg(data), paths, comp)
    assert summary["crop"] is None and "## Crop" not in paths.eda_report_md.read_text()
