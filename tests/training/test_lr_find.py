"""The LR range test: a falling then diverging loss, a suggestion inside its valley, one process only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from imgclf.config.loading import load_config
from imgclf.errors import UserError
from imgclf.training.lr_find import check_config_target, find_lr, valley, write_lr_into
from tests.helpers.runs import FAST, REPO, run_script
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
    again = find_lr(cfg, paths, comp, folds, start_lr=1e-4, end_lr=1e4, num_iter=60)
    assert again.suggestion == found.suggestion  # seeded, augmentation included
    pd.testing.assert_frame_equal(pd.read_csv(paths.lr_find_dir / "lr_find.csv"), table)


def test_refused_under_torchrun(tmp_path: Path) -> None:
    env = {**os.environ, "WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(REPO / "pipelines/03_train.py"), "--lr-find", "--set",
                             f"paths.root={tmp_path}"], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 03_train.py --lr-find runs in one process"), result.stderr[-1000:]
    assert not (tmp_path / "models").exists()


def test_write_lr_into_keeps_the_other_keys(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("model:\n  name: resnet18\ntrain:\n  epochs: 7\n  lr: 0.1\nmetric: f1_macro\n")
    write_lr_into(target, 0.0012345)
    expected = {"model": {"name": "resnet18"}, "train": {"epochs": 7, "lr": 0.00123}, "metric": "f1_macro"}
    assert yaml.safe_load(target.read_text()) == expected
    fresh = tmp_path / "new.yaml"
    write_lr_into(fresh, 3e-3)
    assert yaml.safe_load(fresh.read_text()) == {"train": {"lr": 0.003}}
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="broken.yaml: not a readable YAML file"):
        write_lr_into(broken, 1e-3)
    assert broken.read_text() == "train: [unclosed\n"  # nothing half-written
    with pytest.raises(UserError, match="no-such-dir"):
        check_config_target(tmp_path / "no-such-dir" / "x.yaml")


def test_lr_find_writes_the_suggestion_into_a_config(tmp_path: Path) -> None:
    cfg, paths, comp, folds = competition(tmp_path)
    target = tmp_path / "exp.yaml"
    target.write_text("train:\n  epochs: 3\n  lr: 0.5\nmodel:\n  name: resnet10t\n")
    sets = [a for o in [*FAST, "data.image_size=16", "train.batch_size=16"] for a in ("--set", o)]
    result = run_script("pipelines/03_train.py", "--lr-find", "--write-config", str(target),
                        "--data", str(cfg.data.dir), *sets, root=paths.root)
    assert result.returncode == 0, result.stderr[-2000:]
    suggested = yaml.safe_load((paths.lr_find_dir / "suggested.yaml").read_text())["train"]["lr"]
    written = yaml.safe_load(target.read_text())
    assert written == {"train": {"epochs": 3, "lr": suggested}, "model": {"name": "resnet10t"}}
    assert suggested != 0.5 and f"wrote train.lr={suggested:.3g} into {target}" in result.stdout
    # the written file is a config the pipeline accepts as it is
    assert load_config(target, [f"data.dir={cfg.data.dir}"]).train.lr == suggested


def test_write_config_needs_lr_find(tmp_path: Path) -> None:
    result = run_script("pipelines/03_train.py", "--write-config", str(tmp_path / "x.yaml"), root=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == ("error: --write-config FILE needs --lr-find "
                                                      "(it writes the range test's suggestion)")
