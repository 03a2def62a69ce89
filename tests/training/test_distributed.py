"""Scale-out: DDP training under torchrun (gloo on CPU), folds trained in separate invocations, locks.

The torchrun tests start real process groups (``python -m torch.distributed.run --standalone``)
of two ranks with one thread each; the other tests need no process group.
"""

from __future__ import annotations

import os
import re
import runpy
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from imgclf.cli import run_stage
from imgclf.config.loading import load_config
from imgclf.data.folds import make_folds, read_folds
from imgclf.data.ingest import load_competition
from imgclf.errors import UserError
from imgclf.lock import hold_lock
from imgclf.metrics import get_metric
from imgclf.paths import Paths
from imgclf.training.checkpoint import load_checkpoint
from imgclf.training.dataset import DistributedWeightedSampler, ImageDataset, make_loader, train_batches
from imgclf.training.distributed import DistInfo
from imgclf.training.oof import predict_fold_oof
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import FAST, REPO, one_thread_env, run_script

TINY = [*FAST, "data.image_size=16", "train.batch_size=8"]


def _overrides(root: Path, *extra: str) -> list[str]:
    args = []
    for item in (*TINY, f"paths.root={root}", *extra):
        args += ["--set", item]
    return args


def _prepared(tmp_path: Path, n_train: int, *extra: str) -> tuple[Path, Path, list[str]]:
    """A tiny competition with its folds.csv; returns (data dir, project root, CLI options)."""
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=n_train, n_test=12, side=16)
    root = tmp_path / "project"
    cfg = load_config(None, [*TINY, f"paths.root={root}", f"data.dir={data}", *extra])
    paths = Paths.from_config(cfg)
    make_folds(cfg, paths, load_competition(cfg, paths))
    return data, root, ["--data", str(data), *_overrides(root, *extra)]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(REPO / "pipelines" / "03_train.py"), *args]
    env = one_thread_env()
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


def _stage_in_process(script: str, *argv: str) -> int:
    """A stage script's own parser and stage function, run in this process (saves the interpreter
    start-up of a subprocess; training runs stay subprocesses)."""
    names = runpy.run_path(str(REPO / "pipelines" / script))
    stage = names["infer_stage"] if "infer_stage" in names else names["ensemble_stage"]
    return run_stage(names["parser"](), stage, list(argv), lock=True)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_torchrun_fold_reports_the_metric_of_its_saved_weights(tmp_path: Path) -> None:
    # log_loss: a continuous metric, so a rank validating with other BatchNorm statistics than the
    # saved weights, or a validation row counted twice, would show
    data, root, options = _prepared(tmp_path, 48, "folds.n_splits=3", "metric=log_loss")
    result = _torchrun("--folds", "0", *options)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DistributedDataParallel: 2 processes (gloo), 1 CPU thread(s) each" in result.stderr

    cfg = load_config(None, [*TINY, f"paths.root={root}", f"data.dir={data}", "folds.n_splits=3",
                             "metric=log_loss"])
    paths = Paths.from_config(cfg)
    comp = load_competition(cfg, paths)
    folds = read_folds(paths, comp)
    history = pd.read_csv(paths.history_csv(0))
    best = load_checkpoint(paths.best_ckpt(0))
    assert len(history) == 2 and best["score"] == pytest.approx(history["score"].min(), abs=1e-9)

    # the saved best weights evaluated by one plain process (no process group) on the whole fold
    single = predict_fold_oof(cfg, paths, comp, folds, 0)
    labels = comp.train.set_index(comp.train["id"].astype(str)).loc[single["id"].astype(str),
                                                                    "label"].to_numpy()
    probs = single[comp.classes].to_numpy()
    last_row = history.iloc[-1]  # train.checkpoint: last, the default: last.pt's weights
    assert get_metric("log_loss")(labels, probs) == pytest.approx(last_row["score"], abs=1e-6)
    assert get_metric("accuracy")(labels, probs) == pytest.approx(last_row["accuracy"], abs=1e-6)
    by_best = predict_fold_oof(cfg.updated({"train.checkpoint": "best"}), paths, comp, folds, 0)
    assert get_metric("log_loss")(labels, by_best[comp.classes].to_numpy()) == pytest.approx(best["score"],
                                                                                               abs=1e-6)

    # the OOF written by the DDP run: every validation id exactly once, the same probabilities
    valid_ids = set(comp.train["id"].astype(str)[folds == 0])
    for oof_path in (paths.fold_oof(0), paths.oof_csv()):
        oof = pd.read_csv(oof_path, dtype={"id": str})
        assert len(oof) == len(valid_ids) and set(oof["id"]) == valid_ids and oof["id"].is_unique
    ddp_oof = pd.read_csv(paths.fold_oof(0), dtype={"id": str}).set_index("id").loc[single["id"]]
    np.testing.assert_allclose(ddp_oof[comp.classes].to_numpy(), probs, atol=1e-6)

    # rank 0 alone wrote: one TensorBoard event file, no lock or temp file left behind
    assert len(list((paths.fold_dir(0) / "tb").glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in paths.fold_dir(0).iterdir() if p.name.startswith(".")) == []

    # a fold locked by a run on another machine: one error line naming the host, and the whole
    # torchrun job fails (rank 1, which never looks at the lock, must not hang)
    paths.fold_lock(1).parent.mkdir(parents=True)
    paths.fold_lock(1).write_text("4242 gpu-box-7")
    failed = _torchrun("--folds", "1", *options)
    assert failed.returncode != 0
    errors = _error_lines(failed.stderr)
    assert len(errors) == 1, failed.stderr[-3000:]
    assert "pid 4242 on host gpu-box-7" in errors[0] and "fold 1" in errors[0]
    assert not paths.best_ckpt(1).exists()


@pytest.mark.slow
def test_folds_trained_in_separate_invocations_give_the_same_submission(tmp_path: Path) -> None:
    """Folds {0} and {1, 2} trained by two invocations (as on two machines sharing models/<comp>/)
    give byte-identical predictions and submission to one invocation training all folds. Folds train
    two at a time in fold processes: fold 0 or 1 alone trains in the stage's process on the same one
    thread, and fold 2, the lone last fold, after them on both threads in every invocation."""
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=36, n_test=12, side=16)
    extra = ("folds.n_splits=3", "train.epochs=1", "plan.fold_workers=2")
    submissions = {}
    for name, invocations in (("joint", [[]]), ("split", [["--folds", "0"], ["--folds", "1,2"]])):
        root = tmp_path / name
        common = ["--data", str(data), *_overrides(root, *extra)]
        cfg = load_config(None, [*TINY, *extra, f"paths.root={root}", f"data.dir={data}"])
        paths = Paths.from_config(cfg)
        make_folds(cfg, paths, load_competition(cfg, paths))
        for i, folds_args in enumerate(invocations):
            trained = run_script("pipelines/03_train.py", *folds_args, *common)
            assert trained.returncode == 0, trained.stderr[-3000:]
            side_by_side = re.search(r"folds 0,1: 2 at a time", trained.stderr) is not None
            assert side_by_side == (name == "joint")
            lone = "fold 2: alone after the others, on 2 CPU threads" in trained.stderr
            assert lone == (folds_args != ["--folds", "0"])
            if name == "split" and i == 0:  # fold 1 is not trained yet: inference refuses, naming it
                refused = run_script("pipelines/05_infer.py", *common)
                assert refused.returncode == 2
                assert _error_lines(refused.stderr) == [refused.stderr.strip().splitlines()[-1]]
                assert "fold 1 is not finished" in refused.stderr and "--folds 1" in refused.stderr
        for stage in ("05_infer.py", "06_ensemble.py"):
            assert _stage_in_process(stage, *common) == 0
        submissions[name] = paths
    joint, split = submissions["joint"], submissions["split"]
    for fold in range(3):
        assert split.fold_oof(fold).read_bytes() == joint.fold_oof(fold).read_bytes()
    for pick in (Paths.oof_csv, Paths.test_csv):
        assert pick(split).read_bytes() == pick(joint).read_bytes()
    assert split.submission_csv.read_bytes() == joint.submission_csv.read_bytes()
    assert len(pd.read_csv(split.submission_csv)) == 12


# --- locks ----------------------------------------------------------------------------------------

def test_lock_from_another_host_counts_as_held_and_names_it(tmp_path: Path) -> None:
    lock = tmp_path / "fold0" / ".lock"
    lock.parent.mkdir()
    lock.write_text("1 other-machine")  # pid 1 is alive here, but on another host it cannot be checked
    with pytest.raises(UserError, match=r"pid 1 on host other-machine.*delete .*\.lock"), hold_lock(lock):
        pass
    assert lock.read_text() == "1 other-machine"


def test_dead_pid_on_this_host_is_taken_over_and_the_lock_names_this_host(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{dead.pid} {socket.gethostname()}")
    with hold_lock(lock):
        assert lock.read_text() == f"{os.getpid()} {socket.gethostname()}"
    assert not lock.exists()


def test_live_pid_on_this_host_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    lock.write_text(str(os.getppid()))  # the older format (a bare pid) means this host
    with pytest.raises(UserError, match=f"another run \\(pid {os.getppid()}\\) is using"), hold_lock(lock):
        pass


# --- samplers (no process group needed) -----------------------------------------------------------

def test_distributed_sampler_splits_each_epoch_between_ranks_deterministically() -> None:
    cfg = load_config(None, [*TINY, "train.batch_size=4"])
    n = 22
    ds = ImageDataset([f"mem{i}.png" for i in range(n)], np.arange(n) % 2, 8, None,
                      np.zeros((n, 8, 8, 3), dtype=np.uint8))

    def epoch_rows(rank: int, epoch: int) -> list[int]:
        loader = make_loader(ds, cfg, torch.device("cpu"), train=True, seed=7, dist=DistInfo(rank, 2),
                             epoch=epoch)
        assert len(loader) == train_batches(n, 4, world=2) == 2
        return [int(i) for _, _, rows in loader for i in rows]

    first, second = epoch_rows(0, 0), epoch_rows(1, 0)
    assert len(first) == len(second) == 8 and not set(first) & set(second)
    assert epoch_rows(0, 0) == first and epoch_rows(0, 1) != first  # seeded; reshuffled by set_epoch
    # evaluation: only the given rows, each once, in order
    rows = np.array([3, 1, 20])
    evaluated = [int(i) for _, _, r in make_loader(ds, cfg, torch.device("cpu"), train=False, rows=rows)
                 for i in r]
    assert evaluated == [3, 1, 20]


def test_distributed_weighted_sampler_balances_classes_across_ranks() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    weights = 1.0 / np.bincount(labels)[labels]
    draws = [list(DistributedWeightedSampler(weights, world=2, rank=r, seed=3)) for r in (0, 1)]
    assert len(draws[0]) == len(draws[1]) == 50
    drawn = np.array(draws[0] + draws[1])
    assert 0.35 < labels[drawn].mean() < 0.65  # 10% of the data, half of the draws
    again = DistributedWeightedSampler(weights, world=2, rank=0, seed=3)
    assert list(again) == draws[0]
    again.set_epoch(1)
    assert list(again) != draws[0]
