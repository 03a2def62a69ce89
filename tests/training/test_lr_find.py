"""The LR range test: a falling then diverging loss, a suggestion inside its valley, one process only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from imgclf.training.lr_find import find_lr, valley
from tests.helpers.runs import REPO
from tests.helpers.trainkit import competition


def test_valley_picks_a_point_down_the_longest_descent() -> None:
    lrs = np.logspace(-6, 0, 61)
    # flat, then falling from 1e-4 to 1e-2, then blowing up
    losses = np.concatenate([np.full(20, 2.0) + 0.001 * np.arange(20), np.linspace(2.0, 0.5, 21)[1:],
                             np.linspace(0.6, 5.0, 21)])
    suggestion = valley(lrs, losses)
    assert 1e-4 < suggestion < 1e-2


def test_a_too_large_lr_diverges_and_the_suggestion_is_below_it(tmp_path: Path, one_thread) -> None:
    cfg, paths, comp, folds = competition(tmp_path, "train.optimizer=sgd", "train.batch_size=8",
                                          "train.clip_grad=null")
    found = find_lr(cfg, paths, comp, folds, start_lr=1e-4, end_lr=1e4, num_iter=60)
    table = pd.read_csv(paths.lr_find_dir / "lr_find.csv")
    assert len(table) < 60  # stopped by the divergence, not by the end of the range
    blown = table["loss"].iloc[-1]
    assert not np.isfinite(blown) or blown > 4 * table["loss"].min()
    assert found.suggestion < table["lr"].iloc[-1] / 10  # well below where it blew up
    assert found.suggestion >= 1e-4
    suggested = yaml.safe_load((paths.lr_find_dir / "suggested.yaml").read_text())
    assert suggested == {"train": {"lr": float(f"{found.suggestion:.3g}")}}
    assert (paths.lr_find_dir / "lr_find.png").stat().st_size > 5000
    assert not paths.best_ckpt(0).exists() and not paths.fold_oof(0).exists()  # no training state


def test_refused_under_torchrun(tmp_path: Path) -> None:
    env = {**os.environ, "WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(REPO / "pipelines/03_train.py"), "--lr-find", "--set",
                             f"paths.root={tmp_path}"], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 03_train.py --lr-find runs in one process"), result.stderr[-1000:]
    assert not (tmp_path / "models").exists()
