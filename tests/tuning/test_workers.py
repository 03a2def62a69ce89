"""The trial budget shared by workers: exactly N counted trials, stale trials of dead workers failed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from imgclf.config.loading import load_config
from imgclf.paths import Paths
from imgclf.tuning.storage import open_storage
from imgclf.tuning.workers import admit, fail_stale_trials, owner_record

pytestmark = pytest.mark.usefixtures("one_thread")  # up to two workers share two cores


def test_exactly_n_rule_and_stale_trials(tmp_path: Path) -> None:
    """The admission rule under concurrency, on a real journal: 5 trials started at once, N=3."""
    paths = Paths.from_config(load_config(None, [f"paths.root={tmp_path}"]))
    study = optuna.create_study(study_name="s", storage=open_storage(None, paths))
    trials = [study.ask() for _ in range(5)]  # all RUNNING together, as if 5 workers raced
    assert [admit(study, t.number, 3) for t in trials] == [True, True, True, False, False]
    study.tell(trials[1], state=TrialState.FAIL)  # a failed trial frees its slot for a later one
    assert admit(study, 3, 3) and not admit(study, 4, 3)
    # A RUNNING trial whose worker died (kill -9) is failed; one of a live worker or another host is not.
    dead = subprocess.Popen(["true"])
    dead.wait()
    trials[0].set_user_attr("worker", {**owner_record(), "pid": dead.pid, "start": None})
    trials[2].set_user_attr("worker", owner_record())
    trials[3].set_user_attr("worker", {"host": "elsewhere", "pid": dead.pid, "start": None})
    assert fail_stale_trials(study) == [0]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[0] == TrialState.FAIL and states[2] == states[3] == TrialState.RUNNING
    assert study.get_trials()[0].user_attrs["fail_reason"].startswith("stale: its worker")
