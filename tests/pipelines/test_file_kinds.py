"""``bash run_all.sh`` on a competition whose images mix every file kind (EXIF-rotated phone JPEGs,
CMYK, progressive, palette, transparent, grey, 16-bit, BMP, TIFF, WebP, upper- and mixed-case
extensions, names with spaces and non-ASCII letters, numeric ids with leading zeros) and whose CSVs
come with a byte-order mark, CRLF line ends, quotes and trailing spaces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.filekinds import make_mixed_competition
from tests.helpers.runs import FAST, TINY_TUNE, run_all

OVERRIDES = [*FAST, "data.image_size=16", "train.batch_size=8", "train.epochs=3", "train.lr=0.003",
             *TINY_TUNE]


@pytest.mark.slow
def test_run_all_on_every_file_kind(tmp_path: Path) -> None:
    data = make_mixed_competition(tmp_path / "kinds")
    root = tmp_path / "project"
    result = run_all(data, root, *OVERRIDES)
    assert result.returncode == 0, result.stderr[-3000:]
    submission = pd.read_csv(root / "submissions" / "kinds" / "submission.csv", dtype=str,
                             keep_default_na=False)
    sample = pd.read_csv(data / "sample_submission.csv", dtype=str, encoding="utf-8-sig")
    assert list(submission.columns) == ["id", "label"]
    assert submission["id"].tolist() == sample["id"].tolist()  # '0500' stays '0500', names intact
    assert float(result.stdout.split("accuracy:")[1].split()[0]) >= 0.6  # chance is 1/3
    report = (root / "models" / "kinds" / "eda" / "report.md").read_text()
    for expected in ("EXIF Orientation", "CMYK", "composited on a white background", "16-bit"):
        assert expected in report, expected
