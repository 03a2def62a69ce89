"""One writing run at a time: a second concurrent run gets one ``error:`` line naming the holder's pid,
and the lock of a dead run (kill -9, or a pid since reused by another process) is taken over."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from imgclf.cli import common_parser, run_stage
from imgclf.errors import UserError
from imgclf.lock import hold_lock
from imgclf.stages import folds_stage
from imgclf.training.checkpoint import load_checkpoint
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import REPO, one_thread_env

TRAIN = ["model.name=test_efficientnet", "model.pretrained=false", "folds.n_splits=2", "data.image_size=16",
         "train.epochs=3", "train.batch_size=8", "train.num_workers=0", "device=cpu", "train.warmup_epochs=0"]
ENV = one_thread_env()


def _train_cmd(data: Path, root: Path) -> list[str]:
    sets = [arg for o in [*TRAIN, f"paths.root={root}"] for arg in ("--set", o)]
    return [sys.executable, str(REPO / "pipelines/03_train.py"), "--data", str(data), *sets]


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


@pytest.mark.slow
def test_second_concurrent_train_is_refused_and_a_killed_runs_lock_is_taken_over(tmp_path: Path) -> None:
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=24, n_test=6, side=16)
    root = tmp_path / "project"
    fold0 = root / "models" / "shapes" / "baseline" / "fold0"
    made = subprocess.run([sys.executable, str(REPO / "pipelines/02_folds.py"), *_train_cmd(data, root)[2:]],
                          capture_output=True, text=True, cwd=REPO, env=ENV, timeout=120)
    assert made.returncode == 0, made.stderr

    first = subprocess.Popen(_train_cmd(data, root), cwd=REPO, env=ENV, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (fold0 / "last.pt").is_file():
            assert (first.poll() is None
                    and time.monotonic() < deadline), "the first run did not start training"
            time.sleep(0.01)
        os.killpg(first.pid, signal.SIGSTOP)  # frozen mid-fold: alive and holding its fold locks
        config = (fold0.parent / "config.yaml").stat().st_mtime_ns
        second = subprocess.run(_train_cmd(data, root), capture_output=True, text=True, cwd=REPO, env=ENV,
                                timeout=120)
        assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr
        assert _error_lines(second.stderr) == [
            f"error: another run (pid {first.pid}) is using fold 0 of experiment 'baseline'; "
            f"wait for it or stop it (lock file {fold0 / '.lock'})"]
        assert (fold0.parent / "config.yaml").stat().st_mtime_ns == config  # the refused run touched nothing
        os.killpg(first.pid, signal.SIGKILL)  # no clean-up: its lock files stay behind
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert (fold0 / ".lock").read_text().split()[0] == str(first.pid)
    killed_at = load_checkpoint(fold0 / "last.pt")["epoch"]

    third = subprocess.run(_train_cmd(data, root), capture_output=True, text=True, cwd=REPO, env=ENV,
                           timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    assert f"fold 0: resuming after epoch {killed_at}" in third.stderr
    assert (fold0 / "oof.csv").is_file() and (fold0.parent / "fold1" / "oof.csv").is_file()
    assert not list(root.rglob(".lock")) and not list(fold0.glob(".tmp-*"))


def test_competition_lock_refuses_a_live_holder_and_takes_over_a_dead_ones(tmp_path: Path) -> None:
    """Stages run with lock=True (01, 02, 05, 06) lock models/<comp>/ as a whole."""
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=12, n_test=3, side=8)
    argv = ["--data", str(data), "--set", f"paths.root={tmp_path / 'project'}", "--set", "folds.n_splits=2"]
    lock = tmp_path / "project" / "models" / "shapes" / ".lock"
    lock.parent.mkdir(parents=True)
    holder = _sleeper()
    try:
        lock.write_text(f"{holder.pid} {socket.gethostname()}")
        err = io.StringIO()
        with redirect_stderr(err):
            code = run_stage(common_parser("folds"), folds_stage, argv, lock=True)
        assert code == 2 and _error_lines(err.getvalue()) == [
            f"error: another run (pid {holder.pid}) is using {lock.parent}; "
            f"wait for it or stop it (lock file {lock})"]
        assert not (lock.parent / "folds.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    with redirect_stderr(io.StringIO()):
        assert run_stage(common_parser("folds"), folds_stage, argv, lock=True) == 0
    assert (lock.parent / "folds.csv").is_file() and not lock.exists()


def test_a_reused_pid_does_not_keep_a_dead_runs_lock(tmp_path: Path) -> None:
    """pid_max is often 32768: the pid in a stale lock may belong to an unrelated, newer process.
    A process that started after the lock file was written cannot be its holder."""
    lock = tmp_path / ".lock"
    newer = _sleeper()
    try:
        time.sleep(0.2)
        lock.write_text(f"{newer.pid} {socket.gethostname()}")
        with pytest.raises(UserError, match=f"another run \\(pid {newer.pid}\\)"), hold_lock(lock):
            pass  # written after the process started: it may be the holder
        an_hour_ago = time.time() - 3600
        os.utime(lock, (an_hour_ago, an_hour_ago))  # the lock predates the process: the pid was reused
        with hold_lock(lock):
            assert lock.read_text() == f"{os.getpid()} {socket.gethostname()}"
        assert not lock.exists()
    finally:
        newer.kill()
        newer.wait()


def test_lock_file_appears_with_its_content(tmp_path: Path) -> None:
    """Created by a hard link of a filled temp file: a reader never sees an empty (stale-looking) lock."""
    lock = tmp_path / "fold0" / ".lock"
    with hold_lock(lock):
        assert lock.read_text() == f"{os.getpid()} {socket.gethostname()}"
        assert [p.name for p in lock.parent.iterdir()] == [".lock"]  # the temp file is gone
