"""Running the project as a user does: its stage scripts and run_all.sh, with a shrunken real config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from imgclf.config.schema import Config
from imgclf.paths import Paths

REPO = Path(__file__).resolve().parents[2]

# Overrides that make every stage fast on 2 CPU cores.
FAST = [
    "model.name=resnet10t", "model.pretrained=false", "train.epochs=2", "train.batch_size=32",
    "folds.n_splits=2", "data.image_size=32", "train.num_workers=0", "train.warmup_epochs=0",
    "device=cpu", "infer.tta=[identity]", "plan.extra_models=[]",
]


def one_thread_env() -> dict[str, str]:
    """The environment for a stage process: one OpenMP thread (see the ``one_thread`` fixture)."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def paths_of(cfg: Config) -> Paths:
    return Paths.from_config(cfg)


def run_script(script: str, *args: str, root: Path | None = None,
               timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a stage script as a user would; ``root`` redirects input/, models/ and submissions/."""
    cmd = [sys.executable, str(REPO / script), *args]
    if root is not None:
        cmd += ["--set", f"paths.root={root}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=one_thread_env())


# A search that is real but short: two one-epoch trials, the first one random.
TINY_TUNE = ["tune.trials=2", "tune.epochs=1", "tune.n_startup_trials=1"]


def run_all(data: Path, root: Path, *overrides: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """``bash run_all.sh --data DATA --set ...`` exactly as a user types it, outputs under ``root``."""
    cmd = ["bash", str(REPO / "run_all.sh"), "--data", str(data)]
    for override in (*overrides, f"paths.root={root}"):
        cmd += ["--set", override]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=one_thread_env())
