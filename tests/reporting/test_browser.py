"""report.html in a real headless browser: every picture loads, nothing is wider than a laptop
screen, and a screenshot is saved (under models/<comp>/, beside the report)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from imgclf.reporting.html import write_report_html
from tests.helpers.browser import chromium, image_states, screenshot
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import FAST, TINY_TUNE, run_all
from tests.reporting.test_html import make_artefacts

pytestmark = pytest.mark.skipif(chromium() is None,
                                reason="no chromium (scripts/setup_chromium.sh installs it)")


def check_in_browser(report: Path, min_images: int) -> Path:
    states = image_states(report)
    broken = [i["alt"] for i in states["images"] if not i["ok"]]
    assert len(states["images"]) >= min_images and not broken, broken
    assert states["width"] <= 1366  # no horizontal scrolling on a laptop screen
    shot = screenshot(report, report.with_name("report_screenshot.png"))
    with Image.open(shot) as im:
        assert im.size == (1366, 2400) and len(set(im.convert("L").getdata())) > 20  # not a blank page
    return shot


def test_the_report_of_made_up_artefacts_renders(tmp_path: Path) -> None:
    paths = make_artefacts(tmp_path)
    check_in_browser(write_report_html(paths, ["baseline"], "accuracy"), min_images=5)


def test_a_broken_image_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text('<html><body><img src="missing.png" alt="gone"></body></html>')
    assert image_states(page)["images"] == [{"alt": "gone", "ok": False}]


@pytest.mark.slow
def test_after_run_all(tmp_path: Path) -> None:
    data = make_kaggle_dataset(tmp_path / "shapes")
    root = tmp_path / "project"
    result = run_all(data, root, *FAST, *TINY_TUNE, "data.image_size=16", "train.batch_size=8")
    assert result.returncode == 0, result.stderr[-3000:]
    comp = root / "models" / "shapes"
    for folder in ("baseline", "baseline_tuned", "ensemble"):
        errors = comp / folder / "errors"
        assert (errors / "top_losses.png").is_file() and (errors / "reliability.png").is_file()
        assert folder == "ensemble" or (errors / "cam.png").is_file()  # the ensemble has no model to explain
    # per experiment: 2 learning curves, confusion, F1, top losses, reliability; ensemble: 3; EDA, tuning
    check_in_browser(comp / "report.html", min_images=15)
