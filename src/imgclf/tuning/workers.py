"""Several tune workers on one study: exactly N counted trials, and no trial left RUNNING by a dead worker.

Counted trials are COMPLETE and PRUNED ones. ``--trials N`` means the study ends with exactly N of
them, however many workers run at once. Optuna gives trials unique numbers in creation order, and
a trial is visible to every worker from its creation on (the journal appends under a file lock;
RDB storage creates trials under a row lock on the study), so one rule settles every race:

    trial t may run  iff  fewer than N trials numbered below t are WAITING, RUNNING, COMPLETE or PRUNED.

Trials only move WAITING -> RUNNING -> COMPLETE/PRUNED/FAIL, so the trials below t that end up counted
are among those the rule saw; hence at most N counted trials. A refused trial ("surplus") is
recorded as FAIL with ``fail_reason`` "surplus: ...", and its worker stops. FAIL trials (surplus,
errors, stale) never count. A worker starts another trial while any is queued or fewer than N are
running or done, so a failed trial is replaced by its own worker and the study reaches N, unless
``--timeout`` ends it first, a worker gives up after repeated failures, or a worker is killed
(see below: a live worker on the same machine takes its slot over, otherwise a rerun does).

A worker killed with SIGKILL cannot mark its trial. Every trial records its owner (host, pid and
the process's start time); before each trial, a worker marks RUNNING trials of dead owners on its own
host as FAIL ("stale: ..."). On RDB storage Optuna's heartbeat does the same across machines.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
from collections.abc import Iterable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from imgclf.lock import pid_running, process_start_ticks

log = logging.getLogger(__name__)

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
STARTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
IN_PLAY = (TrialState.WAITING, *STARTED)
OWNER_ATTR = "worker"
REASON_ATTR = "fail_reason"
SURPLUS = "surplus"
STALE = "stale"
UNOWNED_GRACE_S = 120  # a RUNNING trial still without an owner record after this long was orphaned


class SurplusTrial(Exception):
    """The study already has its N trials (running or done): this one must not count."""


def owner_record() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": process_start_ticks(os.getpid())}


def _owner_alive(owner: dict) -> bool:
    """The trial's worker still runs: its pid is alive and not reused (same start time)."""
    pid = int(owner["pid"])
    if not pid_running(pid):
        return False
    start = owner.get("start")
    return start is None or process_start_ticks(pid) in (None, start)


def counted(trials: Iterable[FrozenTrial]) -> int:
    return sum(t.state in COUNTED for t in trials)


def in_play(trials: Iterable[FrozenTrial]) -> int:
    return sum(t.state in IN_PLAY for t in trials)


def more_wanted(trials: Iterable[FrozenTrial], n_trials: int) -> bool:
    """Should a worker start another trial? Yes while trials wait in the queue (``enqueue_trial``)
    or fewer than N are running or done."""
    trials = list(trials)
    return any(t.state == TrialState.WAITING for t in trials) or \
        sum(t.state in STARTED for t in trials) < n_trials


def admit(study: optuna.Study, number: int, n_trials: int) -> bool:
    """The rule above: may trial ``number`` run without the study exceeding ``n_trials``?"""
    before = [t for t in study.get_trials(deepcopy=False) if t.number < number]
    return in_play(before) < n_trials


def fail_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Mark another worker's RUNNING trial as FAIL with ``reason``; False if someone finished it first."""
    storage = study._storage  # the public Study API only finishes trials the caller asked for itself
    try:
        storage.set_trial_user_attr(trial._trial_id, REASON_ATTR, reason)
        return storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except (UpdateFinishedTrialError, RuntimeError):
        return False


def stale_reason(trial: FrozenTrial, host: str, now: datetime.datetime) -> str | None:
    owner = trial.user_attrs.get(OWNER_ATTR)
    if owner is None:
        started = trial.datetime_start
        if started is not None and (now - started).total_seconds() > UNOWNED_GRACE_S:
            return f"{STALE}: RUNNING since {started:%H:%M:%S} and no worker recorded"
        return None
    if owner.get("host") == host and not _owner_alive(owner):
        return f"{STALE}: its worker (pid {owner['pid']} on {host}) is gone"
    return None


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """FAIL the RUNNING trials whose worker is dead; returns their numbers."""
    host, now, failed = socket.gethostname(), datetime.datetime.now(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = stale_reason(trial, host, now)
        if reason and fail_trial(study, trial, reason):
            log.warning("trial %d marked FAIL (%s)", trial.number, reason)
            failed.append(trial.number)
    return failed
