"""The training throughput the budgeted plan measures: real steps of the configured model."""

from __future__ import annotations

import math
from pathlib import Path

from imgclf.data.ingest import load_competition
from imgclf.paths import Paths
from imgclf.training.throughput import measure_images_per_s
from tests.helpers.datasets import make_kaggle_dataset


def test_throughput_is_measured_on_the_configured_model(fast_cfg, tmp_path: Path) -> None:
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=12, n_test=4, side=16)
    cfg = fast_cfg(data)
    comp = load_competition(cfg, Paths.from_config(cfg))
    rate = measure_images_per_s(cfg, comp, side=16, batch=8)
    assert math.isfinite(rate) and rate > 1
    other = measure_images_per_s(cfg.updated({"model.name": "regnetx_002"}), comp, side=16, batch=8)
    assert math.isfinite(other) and other > 1
