"""A partly trained experiment (``--folds 0`` for a quick look) does not block inference and
ensembling: it is left out with one warning naming it and the command that completes it, unless
``ensemble.experiments`` lists it (then the error stays). A finished rerun of 03_train.py returns
without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import FAST, REPO, one_thread_env, run_script

# 03_train.py as a user runs it, then whether it imported torch (it must not when nothing is left)
RERUN = """
import runpy, sys
sys.argv = ["pipelines/03_train.py", *sys.argv[1:]]
try:
    runpy.run_path("pipelines/03_train.py", run_name="__main__")
except SystemExit as stop:
    assert not stop.code, stop.code
print("torch imported:", "torch" in sys.modules)
"""


def _options(data: Path, root: Path, *extra: str) -> list[str]:
    args = ["--data", str(data)]
    for item in (*FAST, "data.image_size=16", "train.epochs=1", f"paths.root={root}", *extra):
        args += ["--set", item]
    return args


def test_partly_trained_experiment_is_left_out_with_a_warning(tmp_path: Path) -> None:
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=24, n_test=8, side=16)
    root = tmp_path / "project"
    options = _options(data, root)
    for script, *args in (("pipelines/02_folds.py",), ("pipelines/03_train.py",),
                          ("pipelines/03_train.py", "--folds", "0", "--set", "experiment=quick")):
        done = run_script(script, *args, *options)
        assert done.returncode == 0, done.stderr[-2000:]

    rerun = subprocess.run([sys.executable, "-c", RERUN, *options], capture_output=True, text=True,
                           cwd=REPO, env=one_thread_env(), timeout=300)
    assert rerun.returncode == 0 and "nothing to train" in rerun.stderr, rerun.stderr[-2000:]
    assert "CV baseline" in rerun.stdout and rerun.stdout.strip().endswith("torch imported: False")

    for script in ("pipelines/05_infer.py", "pipelines/06_ensemble.py"):
        done = run_script(script, *options)
        assert done.returncode == 0, done.stderr[-2000:]
        warnings = [line for line in done.stderr.splitlines() if "left out" in line]
        assert len(warnings) == 1 and "'quick'" in warnings[0] and "fold(s) 1 not finished" in warnings[0]
        assert "--set experiment=quick" in warnings[0]
    ensemble = json.loads((root / "models" / "shapes" / "ensemble" / "ensemble.json").read_text())
    assert "quick" not in json.dumps(ensemble) and "baseline" in json.dumps(ensemble)

    listed = run_script("pipelines/05_infer.py", *options, "--set", "ensemble.experiments=[quick]")
    assert listed.returncode == 2
    last = listed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: experiment 'quick': fold 1 is not finished")
