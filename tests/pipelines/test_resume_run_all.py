"""The whole run survives being killed: ``bash run_all.sh`` killed with SIGKILL (its whole process
group: no handler, no clean-up) at three points, then rerun, ends with the same bytes as a run that
was never interrupted; SIGTERM to the script alone stops the running stage cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imgclf.training.checkpoint import load_checkpoint
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import REPO, one_thread_env

pytestmark = pytest.mark.slow

COMP = "shapes"
# FAST-like, on a 2-core CPU: a tiny timm model, 3 epochs (so that fold 0 can be caught mid-training),
# 2 folds, 2 one-epoch tuning trials, small images and batches.
OVERRIDES = [
    "model.name=test_efficientnet", "model.pretrained=false", "train.epochs=3", "train.batch_size=8",
    "train.lr=0.003", "folds.n_splits=2", "data.image_size=16", "train.num_workers=0",
    "train.warmup_epochs=0", "device=cpu", "infer.tta=[identity,hflip]", "tune.trials=2", "tune.epochs=1",
    "tune.n_startup_trials=1",
    "train.last_checkpoint_every_s=0",  # last.pt after every epoch: fold 0 can be caught mid-training
]
ENV = one_thread_env()


def _cmd(data: Path, root: Path) -> list[str]:
    sets = [arg for o in [*OVERRIDES, f"paths.root={root}"] for arg in ("--set", o)]
    return ["bash", str(REPO / "run_all.sh"), "--data", str(data), *sets]


def _exp(root: Path, experiment: str = "baseline") -> Path:
    return root / "models" / COMP / experiment


def _tail(log: Path) -> str:
    return log.read_text()[-3000:] if log.is_file() else ""


def _run_to_end(data: Path, root: Path, log: Path) -> None:
    with open(log, "a") as out:
        done = subprocess.run(_cmd(data, root), stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=REPO,
                              timeout=400)
    assert done.returncode == 0, _tail(log)


def _start(data: Path, root: Path, log: Path) -> subprocess.Popen:
    with open(log, "a") as out:  # the child keeps its own descriptor
        return subprocess.Popen(_cmd(data, root), stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=REPO,
                                start_new_session=True)  # its own process group: killpg reaches every stage


def _wait_for(proc: subprocess.Popen, ready: Callable[[], bool], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "run_all ended before the kill point:\n" + _tail(log)
        assert time.monotonic() < deadline, "kill point not reached:\n" + _tail(log)
        time.sleep(0.01)


def _group_gone(pgid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _kill_at(data: Path, root: Path, ready: Callable[[], bool], log: Path) -> None:
    proc = _start(data, root, log)
    try:
        _wait_for(proc, ready, log)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert _group_gone(proc.pid), "a stage outlived SIGKILL of the process group"


def _outputs(root: Path) -> dict[str, bytes]:
    """Every prediction file and submission of a run, by path relative to its root."""
    comp, subs = root / "models" / COMP, root / "submissions" / COMP
    files = [comp / "folds.csv", *comp.glob("*/oof*.csv"), *comp.glob("*/fold*/oof.csv"),
             *comp.glob("*/test.csv"), comp / "tune" / "best_config.yaml", *subs.rglob("*.csv")]
    # best_config.yaml names its own location (paths.root): the one expected difference between roots
    return {p.relative_to(root).as_posix(): p.read_bytes().replace(str(root).encode(), b"<root>")
            for p in files if p.is_file()}


def _fold0_training(root: Path) -> Callable[[], bool]:
    return lambda: (_exp(root) / "fold0" / "last.pt").is_file()  # epoch 1 of 3 done


def _between_folds(root: Path) -> Callable[[], bool]:
    return lambda: (_exp(root) / "fold0" / "oof.csv").is_file()


def _inference(root: Path) -> Callable[[], bool]:
    # baseline inferred, baseline_tuned and ensembling to go
    return lambda: (_exp(root) / "test.csv").is_file()


def _check_kill_point(name: str, root: Path) -> None:
    """The kill landed where the scenario says (the run was not already past it)."""
    sub = root / "submissions" / COMP / "submission.csv"
    if name == "during training of fold 0":
        assert load_checkpoint(_exp(root) / "fold0" / "last.pt")["epoch"] < 3
        assert not (_exp(root) / "fold0" / "oof.csv").exists()
    elif name == "between folds":
        assert not (_exp(root) / "fold1" / "last.pt").exists()
    else:
        assert not (_exp(root, "baseline_tuned") / "test.csv").exists() and not sub.exists()


SCENARIOS = {"during training of fold 0": _fold0_training, "between folds": _between_folds,
             "during inference": _inference}


def _scenario(data: Path, tmp_path: Path, name: str | None) -> tuple[dict[str, bytes], float]:
    """An uninterrupted run (``name`` None), or one killed at the scenario's point and rerun."""
    start = time.perf_counter()
    slug = name.replace(" ", "_") if name else "uninterrupted"
    root, log = tmp_path / slug, tmp_path / f"{slug}.log"
    if name is not None:
        _kill_at(data, root, SCENARIOS[name](root), log)
        _check_kill_point(name, root)
    _run_to_end(data, root, log)
    # the rerun took the killed run's locks over and released them; killed writes left no temp file
    # where a fold was trained again
    assert not list(root.rglob(".lock")), "a lock file outlived its run"
    assert not list(root.glob(f"models/{COMP}/*/fold*/.tmp-*"))
    return _outputs(root), time.perf_counter() - start


def test_sigkill_at_three_points_then_rerun_gives_the_uninterrupted_bytes(tmp_path: Path) -> None:
    data = make_kaggle_dataset(tmp_path / COMP, n_train=30, n_test=10, side=16)
    # two runs at a time (each single-threaded): the four runs are independent, each in its own root
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_scenario, data, tmp_path, name) for name in (None, *SCENARIOS)}
        results = {name: future.result() for name, future in futures.items()}
    timings = {name or "uninterrupted": seconds for name, (_, seconds) in results.items()}
    expected, _ = results.pop(None)
    assert {"submissions/shapes/submission.csv", "models/shapes/baseline/oof.csv",
            "models/shapes/baseline_tuned/oof.csv", "models/shapes/baseline/fold1/oof.csv"} <= set(expected)
    same = []
    for name, (got, _) in results.items():
        differ = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
        assert not differ, f"killed {name}: these differ from the uninterrupted run: {differ}"
        same.append(name)
    assert len(same) == 3
    print("byte-identical after SIGKILL + rerun: 3/3;",
          ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))


def test_sigterm_to_run_all_stops_the_stage_cleanly(tmp_path: Path) -> None:
    """SIGTERM to the script alone (as a scheduler may send it): run_all forwards it to the running
    stage, which abandons the epoch, keeps last.pt of the finished one, and nothing is left running."""
    data = make_kaggle_dataset(tmp_path / COMP, n_train=30, n_test=10, side=16)
    root, log = tmp_path / "project", tmp_path / "run.log"
    proc = _start(data, root, log)
    try:
        _wait_for(proc, _fold0_training(root), log)
        proc.send_signal(signal.SIGTERM)  # bash alone, not its process group
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, _tail(log)
    assert _group_gone(proc.pid, timeout=5), "the stage kept running after run_all stopped"
    text = log.read_text()
    assert "error: interrupted" in text and "stopped by SIGTERM" in text and "Traceback" not in text
    assert "==> tune.py" not in text  # no later stage started
    last = load_checkpoint(_exp(root) / "fold0" / "last.pt")  # a complete checkpoint of a finished epoch
    assert 1 <= last["epoch"] < 3 and len(last["history"]) == last["epoch"]
    assert not list((_exp(root) / "fold0").glob(".tmp-*")) and not (_exp(root) / "fold0" / ".lock").exists()
