"""report.html: one self-contained page built from the artefacts, every picture embedded and small."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from imgclf.atomic import write_csv, write_text
from imgclf.paths import Paths
from imgclf.reporting.errors import write_error_analysis
from imgclf.reporting.figures import plot_learning_curves
from imgclf.reporting.html import MAX_WIDTH, write_report_html


def make_artefacts(root: Path) -> Paths:
    """A finished-looking run of one two-fold experiment, its error analysis and an ensemble table."""
    paths = Paths(root=root, data_dir=root / "input" / "shapes", experiment="baseline")
    rng = np.random.default_rng(0)
    eda = {"n_train": 12, "n_classes": 3, "nested": {"a": 1}}
    write_text(paths.eda_file("summary.json"), json.dumps(eda))
    gradient = np.broadcast_to(np.linspace(0, 255, 2400, dtype=np.uint8)[None, :, None], (300, 2400, 3))
    Image.fromarray(np.ascontiguousarray(gradient)).save(paths.eda_file("wide.png"))  # a plot too wide
    cv = {"experiment": "baseline", "metric": "accuracy", "folds": {"0": 0.5, "1": 0.75}, "mean": 0.625,
          "std": 0.125, "pooled": {"accuracy": 0.625}}
    write_text(paths.cv_json(), json.dumps(cv))
    plan = {"batch_size": 16, "epochs": 40, "steps_per_fold": 600, "warmup_epochs": 2.0, "image_size": 32,
            "reasons": ["small data: at least 600 optimiser steps per fold"]}
    evidence = {"base": 0.9, "chance": 0.34, "tolerance": 0.05, "folds": 2, "n_valid": 12,
                "tell_apart_limit": 0.65,
                "views": {"hflip": {"valid_in_view": 0.4, "tell_apart": 0.95, "keep": False},
                          "rot90": {"valid_in_view": 0.88, "tell_apart": 0.52, "keep": True}}}
    write_text(paths.plan_json(), json.dumps({"plan": plan, "augment": {"hflip": 0.0, "rot90": 1.0},
                                              "augment_evidence": evidence}))
    tta = {"views": ["identity", "rot90", "rot180", "rot270"], "oof_plain": 0.6, "oof_tta": 0.625,
           "gain": 0.025, "candidates": ["identity", "rot90", "rot180", "rot270"]}
    write_text(paths.infer_json(), json.dumps({"stamp": {}, "tta": tta}))
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.9],
                            "score": [0.4, 0.6]})
    for k in (0, 1):
        plot_learning_curves(history, "accuracy", paths.learning_curves_png(k))
    labels, probs = rng.integers(0, 3, 12), rng.dirichlet(np.ones(3), 12)
    images = []
    for i in range(12):
        images.append(root / "input" / "shapes" / f"{i}.png")
        images[-1].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(images[-1])
    ids = [str(i) for i in range(12)]
    write_error_analysis(labels, probs, ["cat", "dog", "fox"], ids, images, paths.errors_dir())
    write_csv(paths.ensemble_scores_csv, pd.DataFrame({"method": ["model:baseline", "soft"],
                                                       "accuracy": [0.625, 0.625], "note": ["", ""]}))
    return paths


def test_report_embeds_every_picture_and_links_artefacts(tmp_path: Path) -> None:
    paths = make_artefacts(tmp_path)
    html = write_report_html(paths, ["baseline", "never_trained"], "accuracy").read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    # eda plot, 2 learning curves, top-loss grid, reliability diagram
    assert len(sources) == 5
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.width <= MAX_WIDTH
    assert "http://" not in html and "https://" not in html  # no CDN: opens offline
    assert 'href="baseline/errors/top_losses.csv"' in html and 'href="eda/wide.png"' in html
    assert "never_trained" not in html  # no cv.json, no section
    assert "ECE" in html and "<td>n_train</td><td>12</td>" in html and "nested" not in html
    assert "No tuning study." in html and "model:baseline" in html
    # the plan, the probe's evidence and the TTA views kept
    assert "small data: at least 600 optimiser steps per fold" in html and "<td>rot90</td>" in html
    assert "hflip 0.400 / told apart 0.950 (off), rot90 0.880 / told apart 0.520 (on)" in html
    assert "with an accuracy of at most 0.650" in html
    assert "<td>identity+rot90+rot180+rot270</td>" in html and "+0.0250" in html
    assert paths.report_html.stat().st_size < 400_000


def test_an_empty_competition_still_renders(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, data_dir=tmp_path / "input" / "x", experiment="baseline")
    html = write_report_html(paths, [], "accuracy").read_text()
    assert "No EDA yet." in html and "No trained experiment yet." in html and "<img" not in html
