"""Folds side by side in fold processes: SIGTERM stops every fold process cleanly (each keeps last.pt of
its previous epoch), a SIGKILLed stage leaves no fold process behind, and the reruns resume to the
bytes of an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from imgclf.paths import Paths
from imgclf.training.checkpoint import load_checkpoint
from tests.helpers.runs import REPO
from tests.helpers.trainkit import competition

EPOCHS = 6


def _train_cmd(data: Path, root: Path) -> list[str]:
    overrides = ["model.name=resnet10t", "model.pretrained=false", "folds.n_splits=2", "data.image_size=16",
                 f"train.epochs={EPOCHS}", "train.batch_size=8", "train.lr=0.003", "train.num_workers=0",
                 "device=cpu", "plan.fold_workers=2", "train.last_checkpoint_every_s=0", f"paths.root={root}"]
    return [sys.executable, str(REPO / "pipelines/03_train.py"), "--data", str(data),
            *[a for o in overrides for a in ("--set", o)]]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _fold_processes(pids: list[int]) -> list[int]:
    """The spawned fold processes among ``pids`` (not multiprocessing's resource tracker)."""
    return [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and [p for p in pids if _alive(p)]:
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)]


def _start_and_wait(cmd: list[str], paths: Paths, epochs: int) -> tuple[subprocess.Popen, list[int]]:
    """The stage started, once both folds have ``epochs`` epochs in history.csv: it and its fold processes."""
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "2"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        lines = [len(paths.history_csv(f).read_text().splitlines()) if paths.history_csv(f).is_file() else 0
                 for f in (0, 1)]
        if min(lines) >= epochs + 1:
            return proc, _children(proc.pid)
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the folds did not reach epoch {epochs}: {proc.communicate()[1][-2000:]}")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
def test_sigterm_and_sigkill_stop_every_fold_process_and_the_reruns_give_the_uninterrupted_bytes(tmp_path):
    cfg, paths, comp, folds = competition(tmp_path, n_train=80)
    whole = Paths(root=tmp_path / "whole", data_dir=paths.data_dir, experiment=paths.experiment)
    whole.comp_dir.mkdir(parents=True)
    shutil.copy(paths.folds_csv, whole.folds_csv)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(_train_cmd(cfg.data.dir, whole.root), capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600)
    assert done.returncode == 0 and "folds 0,1: 2 at a time" in done.stderr, done.stderr[-2000:]

    proc, workers = _start_and_wait(_train_cmd(cfg.data.dir, paths.root), paths, 1)
    folds_at_work = _fold_processes(workers)
    assert len(folds_at_work) == 2
    proc.send_signal(signal.SIGTERM)  # as run_all.sh forwards it: to the stage alone
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143 and stderr.strip().splitlines()[-1] == "error: interrupted", stderr[-2000:]
    assert not [w for w in folds_at_work if _alive(w)]  # the stage waited for them
    _wait_gone(workers)  # multiprocessing's resource tracker leaves once they have
    stopped_at = [load_checkpoint(paths.last_ckpt(f))["epoch"] for f in (0, 1)]
    assert all(1 <= e < EPOCHS for e in stopped_at) and not paths.fold_oof(0).exists()

    proc, workers = _start_and_wait(_train_cmd(cfg.data.dir, paths.root), paths, max(stopped_at) + 1)
    assert len(_fold_processes(workers)) == 2
    proc.send_signal(signal.SIGKILL)  # no handler runs: the fold processes notice their parent is gone
    proc.wait(timeout=30)
    _wait_gone(workers)

    rerun = subprocess.run(_train_cmd(cfg.data.dir, paths.root), capture_output=True, text=True, env=env,
                           cwd=REPO, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming after epoch" in rerun.stderr
    assert paths.oof_csv().read_bytes() == whole.oof_csv().read_bytes()
    for fold in (0, 1):
        mine, theirs = (load_checkpoint(p.last_ckpt(fold))["model"] for p in (paths, whole))
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert not [p for f in (0, 1) for p in paths.fold_dir(f).iterdir() if p.name.startswith(".tmp-")]
