"""Shared fixtures: tiny real image data sets in tmp dirs, a shrunken real config, one compute thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgclf.config.loading import load_config
from imgclf.config.schema import Config
from tests.helpers.datasets import make_kaggle_dataset, make_mask_dataset
from tests.helpers.runs import FAST

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def kaggle_dir(tmp_path: Path) -> Path:
    return make_kaggle_dataset(tmp_path / "shapes")


@pytest.fixture
def mask_dir(tmp_path: Path) -> Path:
    return make_mask_dataset(tmp_path / "mask")


@pytest.fixture
def fast_cfg(tmp_path: Path):
    """Build a fast real config whose outputs live under tmp_path: ``fast_cfg(data_dir, *overrides)``."""

    def build(data_dir: Path | None, *overrides: str) -> Config:
        extra = [f"paths.root={tmp_path / 'project'}"]
        if data_dir is not None:
            extra.append(f"data.dir={data_dir}")
        return load_config(None, FAST + extra + list(overrides))

    return build


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch):
    """One compute thread, in this process and in the stage scripts it starts: tiny models gain
    nothing from a second one, and on a shared 2-core machine OpenMP threads spinning against each
    other made training several times slower (03_train.py: 91 s against 13 s for the same run)."""
    import torch  # here, not at the top: the EDA and data tests never load torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
