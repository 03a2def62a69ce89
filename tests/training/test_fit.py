"""Fold training: freeze/unfreeze, class-balanced sampling, early stopping, EMA checkpoints, logs,
--folds, OOF quality on string labels, and exact resume (after an exception and after kill -9)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from imgclf.data.folds import make_folds
from imgclf.metrics import get_metric
from imgclf.models.backbone import classifier_parameters
from imgclf.paths import Paths
from imgclf.training.checkpoint import load_checkpoint
from imgclf.training.fit import run_fold, train_epoch
from imgclf.training.fold import build_fold_run, ema_decay
from imgclf.training.oof import predict_fold_oof
from tests.helpers.runs import REPO, one_thread_env
from tests.helpers.trainkit import LEARN, competition, params_of

pytestmark = pytest.mark.usefixtures("one_thread")


def _split(run, before: dict) -> tuple[bool, bool]:
    """(did any backbone parameter change, did any head parameter change) since ``before``."""
    head = {name for name, p in run.model.named_parameters() if id(p) in classifier_parameters(run.model)}
    changed = {name for name, p in run.model.named_parameters() if not torch.equal(p, before[name])}
    return bool(changed - head), bool(changed & head)


def test_frozen_backbone_then_unfrozen(tmp_path):
    cfg, paths, comp, folds = competition(tmp_path, "train.freeze_backbone_epochs=1", "train.epochs=2",
                                          n_train=36)
    run = build_fold_run(cfg, paths, comp, folds, 0, paths.fold_dir(0))
    before = params_of(run.model)
    train_epoch(run)  # epoch 1: head only
    assert _split(run, before) == (False, True)
    before = params_of(run.model)
    run.epoch = 1
    train_epoch(run)  # epoch 2: everything (so the optimiser holds the backbone's parameters too)
    assert _split(run, before) == (True, True)
    assert all(p.requires_grad for p in run.model.parameters())


def test_compile_option_wraps_the_training_forward_only(tmp_path):
    """torch.compile is lazy: the wrapper is checked here; a compiled fold was run by hand (slow on CPU)."""
    cfg, paths, comp, folds = competition(tmp_path, "train.compile=true", n_train=12)
    run = build_fold_run(cfg, paths, comp, folds, 0, paths.fold_dir(0))
    assert run.net is not run.model and run.net._orig_mod is run.model
    assert "_orig_mod" not in "".join(run.state()["model"])  # checkpoints keep plain parameter names
    plain = build_fold_run(cfg.updated({"train.compile": False}), paths, comp, folds, 0, paths.fold_dir(0))
    assert plain.net is plain.model


def test_weighted_sampler_fold_trains_on_imbalanced_data(tmp_path):
    cfg, paths, comp, folds = competition(tmp_path, "train.sampler=weighted", "train.epochs=3", *LEARN,
                                          n_train=60)
    keep = (comp.train["label"].to_numpy() != 2) | (np.arange(len(comp.train)) % 4 == 0)  # fox: 1 in 4 kept
    comp.train = comp.train[keep].reset_index(drop=True)
    folds = folds[keep]
    assert np.bincount(comp.train["label"]).tolist() == [20, 20, 5]
    best = run_fold(cfg, paths, comp, folds, 0)
    assert best > 0.6  # chance is ~0.44 (always the majority class)
    history = pd.read_csv(paths.history_csv(0))
    assert len(history) == 3 and history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    # a tiny LR: the validation score stalls, so training must stop long before train.epochs
    cfg, paths, comp, folds = competition(tmp_path, "train.early_stopping_patience=2", "train.epochs=8",
                                          "train.checkpoint=best", "train.lr=1e-9", "train.scheduler=none",
                                          n_train=30)
    run_fold(cfg, paths, comp, folds, 0)
    history = pd.read_csv(paths.history_csv(0))
    scores, losses = history["score"].to_numpy(), history["val_loss"].to_numpy()
    best = 0  # a better score, or the same one with a validation loss lower by 1%
    for epoch in range(1, len(scores)):
        if scores[epoch] > scores[best] or (scores[epoch] == scores[best]
                                            and losses[epoch] < losses[best] * 0.99):
            best = epoch
    assert len(scores) == best + 1 + 2 < 8, scores
    assert load_checkpoint(paths.best_ckpt(0))["epoch"] == best + 1
    last = load_checkpoint(paths.last_ckpt(0))
    assert last["tracker"][2] == 2 and last["epoch"] == len(scores)
    run_fold(cfg, paths, comp, folds, 0)  # a rerun resumes into the stopped state: nothing more is trained
    assert len(pd.read_csv(paths.history_csv(0))) == len(scores)


def test_best_checkpoint_holds_the_ema_weights(tmp_path):
    # 30 images a fold, batch 2: 15 updates in the one epoch -> decay min(0.9, 1 - 10 / 15)
    cfg, paths, comp, folds = competition(tmp_path, "train.ema=true", "train.ema_decay=0.9", "train.epochs=1",
                                          *LEARN, "train.batch_size=2", n_train=60)
    run = build_fold_run(cfg, paths, comp, folds, 0, paths.fold_dir(0))
    assert run.hooks.ema.decay == pytest.approx(1 - 10 / 15)
    run_fold(cfg, paths, comp, folds, 0)
    best, last = load_checkpoint(paths.best_ckpt(0)), load_checkpoint(paths.last_ckpt(0))
    assert best["epoch"] == last["epoch"] == 1
    assert all(torch.equal(v, last["ema"][f"module.{k}"]) for k, v in best["model"].items())
    assert any(not torch.equal(v, last["ema"][f"module.{k}"]) for k, v in last["model"].items()
               if v.is_floating_point())  # the model and its EMA differ: best.pt and validation use the EMA
    assert set(best) >= {"model", "epoch", "score", "metric", "classes", "config", "mean", "std"}
    assert best["classes"] == ["cat", "dog", "fox"]


OVERSHOOT = ("train.epochs=3", "metric=log_loss", "train.lr=0.02", "train.scheduler=none", *LEARN[:1])


def test_log_loss_metric_keeps_the_epoch_with_the_lowest_loss(tmp_path):
    # a constant, too high LR (no cosine decay to rescue the last epoch) overshoots after epoch 1
    cfg, paths, comp, folds = competition(tmp_path, *OVERSHOOT, "train.checkpoint=best", n_train=36)
    kept = run_fold(cfg, paths, comp, folds, 0)
    best, history = load_checkpoint(paths.best_ckpt(0)), pd.read_csv(paths.history_csv(0))
    assert best["metric"] == "log_loss" and best["score"] == pytest.approx(history["log_loss"].min()) == kept
    assert best["epoch"] == int(history["log_loss"].idxmin()) + 1
    assert best["epoch"] < 3  # best.pt is not simply the last one


def test_by_default_the_oof_comes_from_the_last_epoch_not_the_best_validated_one(tmp_path):
    # the same overshooting run: best.pt is still the best epoch, but the OOF predictions (and so the
    # printed score) come from last.pt, so the OOF score is not a maximum taken over the images it scores
    cfg, paths, comp, folds = competition(tmp_path, *OVERSHOOT, n_train=36)
    kept = run_fold(cfg, paths, comp, folds, 0)
    best, history = load_checkpoint(paths.best_ckpt(0)), pd.read_csv(paths.history_csv(0))
    assert best["epoch"] < 3 and best["score"] == pytest.approx(history["log_loss"].min())
    assert kept == pytest.approx(history["log_loss"].iloc[-1]) and kept > best["score"]
    oof = predict_fold_oof(cfg, paths, comp, folds, 0)  # what run_cv writes as the fold's OOF
    labels = comp.labels_of(oof["id"])
    assert get_metric("log_loss")(labels, oof[comp.classes].to_numpy()) == pytest.approx(kept, rel=1e-4)
    by_best = predict_fold_oof(cfg.updated({"train.checkpoint": "best"}), paths, comp, folds, 0)
    assert get_metric("log_loss")(labels, by_best[comp.classes].to_numpy()) == pytest.approx(best["score"],
                                                                                               rel=1e-4)


RESUME_CONFIGS = {
    "cosine-ema-mixup-droppath": ["train.ema=true", "train.mixup_alpha=0.4", "model.drop_path_rate=0.1",
                                  "augment.color_jitter=0.2"],
    "plateau-sampler-freeze": ["train.scheduler=plateau", "train.sampler=weighted",
                               "train.freeze_backbone_epochs=1", "train.warmup_epochs=1",
                               "augment.coarse_dropout=0.5"],
}


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def _comparable(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["time", "images_per_s"])


@pytest.mark.parametrize("name", RESUME_CONFIGS)
def test_interrupted_fold_resumes_bit_identically(tmp_path, name):
    overrides = ["train.epochs=3", *LEARN, *RESUME_CONFIGS[name], "train.last_checkpoint_every_s=0"]
    cfg, paths, comp, folds = competition(tmp_path, *overrides, n_train=30)
    whole = cfg.updated({"paths.root": str(tmp_path / "whole")})
    whole_paths = Paths.from_config(whole)
    assert np.array_equal(make_folds(whole, whole_paths, comp)["fold"].to_numpy(), folds)
    run_fold(whole, whole_paths, comp, folds, 0)

    def stop_after_epoch_2(epoch: int, score: float) -> None:
        if epoch == 2:
            raise KeyboardInterrupt  # what Ctrl-C / SIGTERM does: last.pt of epoch 2 is on disk

    with pytest.raises(KeyboardInterrupt):
        run_fold(cfg, paths, comp, folds, 0, report=stop_after_epoch_2)
    assert load_checkpoint(paths.last_ckpt(0))["epoch"] == 2
    run_fold(cfg, paths, comp, folds, 0)
    _same_weights(paths.best_ckpt(0), whole_paths.best_ckpt(0))
    _same_weights(paths.last_ckpt(0), whole_paths.last_ckpt(0))
    pd.testing.assert_frame_equal(_comparable(pd.read_csv(paths.history_csv(0))),
                                  _comparable(pd.read_csv(whole_paths.history_csv(0))))
    pd.testing.assert_frame_equal(predict_fold_oof(cfg, paths, comp, folds, 0),
                                  predict_fold_oof(whole, whole_paths, comp, folds, 0))


def _train_cmd(data: Path, root: Path) -> list[str]:
    overrides = ["model.name=resnet10t", "model.pretrained=false", "folds.n_splits=2", "data.image_size=16",
                 "train.epochs=4", "train.batch_size=8", "train.lr=0.003", "train.num_workers=0",
                 "device=cpu", "train.ema=true", "train.mixup_alpha=0.4", "model.drop_path_rate=0.1",
                 "train.last_checkpoint_every_s=0", f"paths.root={root}"]
    return [sys.executable, str(REPO / "pipelines/03_train.py"), "--data", str(data), "--folds", "0",
            *[a for o in overrides for a in ("--set", o)]]


@pytest.mark.slow
def test_kill_9_mid_fold_then_rerun_equals_an_uninterrupted_run(tmp_path):
    cfg, paths, comp, folds = competition(tmp_path, n_train=60)  # writes data and folds under project/
    whole = tmp_path / "whole"
    whole_paths = Paths(root=whole, data_dir=paths.data_dir, experiment=paths.experiment)
    whole_paths.comp_dir.mkdir(parents=True)
    shutil.copy(paths.folds_csv, whole_paths.folds_csv)  # the same folds.csv for both runs
    env = one_thread_env()
    first = subprocess.run(_train_cmd(cfg.data.dir, whole), capture_output=True, text=True, env=env, cwd=REPO,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]

    history = paths.history_csv(0)
    proc = subprocess.Popen(_train_cmd(cfg.data.dir, paths.root), env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if history.is_file() and len(history.read_text().splitlines()) >= 3:  # header + 2 epochs
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: the process just vanishes
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = load_checkpoint(paths.last_ckpt(0))["epoch"]
    assert 2 <= killed_at < 4 and not paths.fold_oof(0).exists()

    rerun = subprocess.run(_train_cmd(cfg.data.dir, paths.root), capture_output=True, text=True, env=env,
                           cwd=REPO, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming after epoch {killed_at}" in rerun.stderr
    assert paths.oof_csv().read_bytes() == whole_paths.oof_csv().read_bytes()
    _same_weights(paths.best_ckpt(0), whole_paths.best_ckpt(0))
    _same_weights(paths.last_ckpt(0), whole_paths.last_ckpt(0))
    assert not [p for p in paths.fold_dir(0).iterdir() if p.name.startswith(".tmp-")]


def test_the_weight_average_spans_at_most_a_tenth_of_a_short_run():
    assert ema_decay(0.998, 20_000) == 0.998  # a long run keeps train.ema_decay
    assert ema_decay(0.998, 400) == pytest.approx(0.975)  # ~40 updates of 400
    assert ema_decay(0.998, 30) == pytest.approx(2 / 3)
    assert ema_decay(0.998, 5) == 0.0  # the average is the model itself


def test_checkpoints_wait_for_their_interval_and_always_hold_one_epoch(tmp_path):
    """``train.last_checkpoint_every_s``: an interval longer than the fold writes best.pt, last.pt and
    history.csv once, after the final epoch, with the very bytes of writing them after every epoch;
    best.pt holds the best epoch's weights (kept in memory), not the final ones; a fold interrupted
    before its first write resumes from nothing, to the same weights."""
    overrides = ["train.epochs=5", *LEARN, "train.lr=0.05"]
    cfg, paths, comp, folds = competition(tmp_path, *overrides, "train.last_checkpoint_every_s=1e9",
                                          n_train=30)
    every = cfg.updated({"paths.root": str(tmp_path / "every"), "train.last_checkpoint_every_s": 0})
    every_paths = Paths.from_config(every)
    make_folds(every, every_paths, comp)
    run_fold(every, every_paths, comp, folds, 0)
    best_epoch = load_checkpoint(every_paths.best_ckpt(0))["epoch"]
    assert best_epoch < 5  # the best epoch is not the final one: best.pt must be a copy

    def stop_after_epoch_2(epoch: int, score: float) -> None:
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fold(cfg, paths, comp, folds, 0, report=stop_after_epoch_2)
    assert not [p.name for p in paths.fold_dir(0).iterdir() if p.suffix in (".pt", ".csv")]
    run_fold(cfg, paths, comp, folds, 0)
    assert load_checkpoint(paths.best_ckpt(0))["epoch"] == best_epoch
    assert load_checkpoint(paths.last_ckpt(0))["epoch"] == 5
    _same_weights(paths.best_ckpt(0), every_paths.best_ckpt(0))
    _same_weights(paths.last_ckpt(0), every_paths.last_ckpt(0))
