"""The Optuna stage: real training trials on tiny real images, real journal files and a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from imgclf.config.loading import load_config
from imgclf.data.folds import make_folds
from imgclf.data.ingest import load_competition
from imgclf.paths import Paths
from imgclf.tuning.storage import open_storage
from imgclf.tuning.tuner import open_study, tune
from imgclf.tuning.workers import owner_record
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import REPO, run_script

pytest_plugins = ["tests.helpers.pg"]  # the postgres_server / postgres_url fixtures

# Tiny and fast: 16 px, 60 images in 2 folds, a few optimiser steps per epoch.
TINY = ["model.name=resnet10t", "model.pretrained=false", "folds.n_splits=2", "data.image_size=16",
        "train.num_workers=0", "train.warmup_epochs=0", "train.batch_size=8", "device=cpu",
        "train.epochs=2", "tune.n_startup_trials=2",
        # views fixed: these tests open the study themselves with this config, before tune() plans
        "augment.hflip=0", "augment.vflip=0", "augment.rot90=0", "augment.transpose=0"]
COUNTED = ("COMPLETE", "PRUNED")
pytestmark = pytest.mark.usefixtures("one_thread")  # up to two workers share two cores


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_kaggle_dataset(tmp_path_factory.mktemp("data") / "shapes", n_train=60, n_test=6, side=16)


def project(tmp_path: Path, data: Path, *overrides: str):
    """A config whose outputs live under tmp_path, with folds.csv already made."""
    cfg = load_config(None, [*TINY, f"paths.root={tmp_path / 'proj'}", f"data.dir={data}", *overrides])
    paths = Paths.from_config(cfg)
    make_folds(cfg, paths, load_competition(cfg, paths))
    return cfg, paths


def cli_args(data: Path, *extra: str) -> list[str]:
    return ["--data", str(data), *[a for o in TINY for a in ("--set", o)], *extra]


def load_trials(paths: Paths, study: str = "shapes-baseline", storage: str | None = None):
    return optuna.load_study(study_name=study, storage=open_storage(storage, paths)).get_trials()


def assert_exactly(trials, n: int) -> None:
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials))), numbers  # unique, no gaps
    assert sum(t.state.name in COUNTED for t in trials) == n, [(t.number, t.state.name) for t in trials]
    for t in trials:
        if t.state.name not in COUNTED:
            assert t.state == TrialState.FAIL and t.user_attrs.get("fail_reason"), (t.number, t.state)


@pytest.mark.slow
def test_tune_cli_writes_outputs_and_best_config_trains(tmp_path: Path, shapes: Path) -> None:
    cfg, paths = project(tmp_path, shapes)
    done = run_script("tune.py", *cli_args(shapes, "--trials", "4"), root=paths.root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trials counted" in done.stdout and "best: trial" in done.stdout
    trials = load_trials(paths)
    assert_exactly(trials, 4)
    table = pd.read_csv(paths.trials_csv)
    assert list(table.columns[:3]) == ["number", "state", "value"]
    space = list(cfg.tune.space)
    assert list(table.columns[3:3 + len(space)]) == space  # then the params, by config key
    assert sorted(table["number"]) == [t.number for t in trials]
    for name in ("optimization_history", "slice"):
        assert (paths.tune_dir / f"{name}.png").stat().st_size > 5000
    n_complete = sum(t.state == TrialState.COMPLETE for t in trials)
    assert (paths.tune_dir / "param_importances.png").is_file() == (n_complete >= 2)
    # Trials keep their histories but not their checkpoints, and are no experiment of their own.
    assert list(paths.tune_dir.glob("trials/*/fold0/history.csv")) and not list(paths.tune_dir.rglob("*.pt"))
    assert paths.experiments() == []

    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    trained = run_script("pipelines/03_train.py", "--config", str(paths.best_config_yaml), "--folds", "0",
                         root=paths.root)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert paths.experiments() == ["baseline_tuned"]
    saved = yaml.safe_load(paths.config_yaml("baseline_tuned").read_text())
    for key, value in best.params.items():
        section, name = key.split(".")
        assert saved[section][name] == value, key
    assert saved["train"]["epochs"] == cfg.train.epochs and saved["data"]["image_size"] == 16


class Workers:
    """tune.py processes started in the background, logging to files; killed if a test fails."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir, self.procs = log_dir, []

    def start(self, data: Path, root: Path, *extra: str) -> subprocess.Popen:
        cmd = [sys.executable, str(REPO / "tune.py"), *cli_args(data, *extra), "--set", f"paths.root={root}"]
        log = open(self.log_dir / f"worker{len(self.procs)}.log", "w")  # noqa: SIM115 - closed in wait()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)
        self.procs.append((proc, log))
        return proc

    def wait(self, timeout: float = 600) -> None:
        for i, (proc, log) in enumerate(self.procs):
            proc.wait(timeout=timeout)
            log.close()
            output = (self.log_dir / f"worker{i}.log").read_text()
            assert proc.returncode == 0, output[-3000:]


@pytest.fixture
def workers(tmp_path: Path):
    pool = Workers(tmp_path)
    yield pool
    for proc, log in pool.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _trials_so_far(paths: Paths) -> list:
    try:
        return load_trials(paths) if paths.tune_journal.is_file() else []
    except KeyError:  # the worker has not created the study yet
        return []


@pytest.mark.slow
def test_kill_during_trial_3_then_resume(tmp_path: Path, shapes: Path, workers: Workers) -> None:
    _, paths = project(tmp_path, shapes)
    options = ("--trials", "6", "--set", "tune.pruner=none", "--set", "train.epochs=3",
               "--set", "train.last_checkpoint_every_s=0")  # last.pt after every epoch: seen mid-trial
    worker = workers.start(shapes, paths.root, *options)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and worker.poll() is None:  # kill in trial 2's second epoch
        if any(t.number == 2 and t.state == TrialState.RUNNING and t.intermediate_values
               for t in _trials_so_far(paths)):
            break
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    before = {t.number: (t.state, t.value) for t in load_trials(paths)}
    assert before[2][0] == TrialState.RUNNING and [before[n][0] for n in (0, 1)] == [TrialState.COMPLETE] * 2
    assert list((paths.tune_dir / "trials" / "2").rglob("last.pt"))  # it was killed mid-training

    resumed = run_script("tune.py", *cli_args(shapes, *options), root=paths.root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = load_trials(paths)
    assert_exactly(trials, 6)
    assert len(trials) == 7  # 0, 1, the killed 2, then 3..6
    assert {n: (trials[n].state, trials[n].value) for n in (0, 1)} == {n: before[n] for n in (0, 1)}
    assert trials[2].state == TrialState.FAIL and trials[2].user_attrs["fail_reason"].startswith("stale")
    assert not list((paths.tune_dir / "trials" / "2").rglob("*.pt"))


def _two_workers(workers: Workers, shapes: Path, root: Path, *extra: str) -> None:
    for _ in range(2):
        workers.start(shapes, root, "--trials", "6", *extra)
    workers.wait()


def _check_shared_study(trials) -> None:
    assert_exactly(trials, 6)
    surplus = [t for t in trials if t.state == TrialState.FAIL]
    assert all(t.user_attrs["fail_reason"].startswith("surplus") for t in surplus)
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2  # both workers ran trials
    params = [tuple(sorted(t.params.items())) for t in trials if t.params]
    assert len(set(params)) == len(params)  # per-trial seeds: the workers did not repeat each other


@pytest.mark.slow
def test_two_workers_share_a_journal_study(tmp_path: Path, shapes: Path, workers: Workers) -> None:
    _, paths = project(tmp_path, shapes)
    _two_workers(workers, shapes, paths.root)
    _check_shared_study(load_trials(paths))


@pytest.mark.slow
def test_two_workers_share_a_postgres_study(tmp_path: Path, shapes: Path, workers: Workers,
                                            postgres_url: str) -> None:
    _, paths = project(tmp_path, shapes)
    _two_workers(workers, shapes, paths.root, "--storage", postgres_url, "--study", "pg-study")
    _check_shared_study(load_trials(paths, "pg-study", postgres_url))
    assert not paths.tune_journal.exists()


def test_pruning_stops_a_bad_trial_early(tmp_path: Path, shapes: Path) -> None:
    lr_space = {"train.lr": {"type": "float", "low": 1e-7, "high": 1e-2, "log": True}}
    cfg, paths = project(tmp_path, shapes, "train.epochs=4", "tune.epochs=4", "tune.trials=3")
    cfg = cfg.updated({"tune.space": lr_space})
    study = open_study(cfg, paths, steps=4)
    for lr in (3e-3, 5e-3, 1e-7):  # two learners, then one that cannot learn
        study.enqueue_trial({"train.lr": lr})
    tune(cfg, paths)
    trials = load_trials(paths)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert len(trials[2].intermediate_values) < 4 and all(len(t.intermediate_values) == 4 for t in trials[:2])
    ran = pd.read_csv(paths.tune_dir / "trials" / "2" / "fold0" / "history.csv")
    assert len(ran) == len(trials[2].intermediate_values) < 4


def test_failed_trials_are_recorded_and_the_study_goes_on(tmp_path: Path, shapes: Path) -> None:
    space = {"model.name": {"type": "categorical", "choices": ["resnet10t", "no_such_model"]},
             "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    cfg, paths = project(tmp_path, shapes, "tune.trials=1", "train.epochs=1")
    cfg = cfg.updated({"tune.space": space})
    study = open_study(cfg, paths, steps=1)
    study.enqueue_trial({"model.name": "no_such_model", "train.lr": 1e-3})
    study.enqueue_trial({"model.name": "resnet10t", "train.lr": 1e30})  # absurd: the loss turns NaN
    study.enqueue_trial({"model.name": "resnet10t", "train.lr": 3e-3})
    with pytest.warns(UserWarning, match="out of range"):
        tune(cfg, paths)
    trials = load_trials(paths)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert "unknown timm model 'no_such_model'" in trials[0].user_attrs["fail_reason"]
    assert trials[1].user_attrs["fail_reason"].startswith("FloatingPointError: training loss is")
    table = pd.read_csv(paths.trials_csv).fillna("")
    assert (list(table["state"]) == ["FAIL", "FAIL", "COMPLETE"]
            and table["fail_reason"][0].startswith("ConfigError"))


def test_a_surplus_trial_fails_and_stops_its_worker(tmp_path: Path, shapes: Path) -> None:
    """The race the admission rule settles: a worker asks for a trial while another worker's trial
    already fills the study (here: a queued trial is popped while trial 0 runs elsewhere)."""
    cfg, paths = project(tmp_path, shapes, "tune.trials=1")
    study = open_study(cfg, paths, steps=2)
    other = study.ask()
    other.set_user_attr("worker", owner_record())  # alive: this very process
    study.enqueue_trial({"train.lr": 1e-3})
    tune(cfg, paths)
    trials = load_trials(paths)
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.FAIL]
    assert trials[1].user_attrs["fail_reason"].startswith("surplus") and not trials[1].intermediate_values
