"""The entry of a fold process (training.parallel). It imports only what its set-up needs, so that
the logging, the signals and wandb's exclusion from timm are in place before torch and timm load."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time

import numpy as np

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.logs import setup_logging
from imgclf.optional import hide_wandb_from_timm
from imgclf.paths import Paths


def fold_process(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, threads: int,
                 level: int, tasks: mp.Queue, results: mp.Queue) -> None:
    """Set up like a stage's process, then train the folds of ``tasks`` on ``threads`` threads."""
    _exit_with_parent(os.getppid())
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    setup_logging(level <= logging.DEBUG)
    hide_wandb_from_timm()
    from imgclf.training.engine import hide_progress_bars  # torch and timm: after the set-up above
    from imgclf.training.fold_job import run_fold_tasks

    hide_progress_bars()
    try:
        run_fold_tasks(cfg, paths, comp, folds, threads, tasks, results)
    except KeyboardInterrupt:  # between two folds: nothing of a fold to keep
        results.put(("stopped", None, ""))


def _interrupt(signum: int, frame: object) -> None:
    """The first Ctrl-C or SIGTERM stops the fold (its epoch abandoned); later ones are ignored."""
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt


def _exit_with_parent(parent: int) -> None:
    """A fold process outlives no SIGKILLed stage: it would go on writing a fold that a rerun,
    finding the stage's lock stale, trains again."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
