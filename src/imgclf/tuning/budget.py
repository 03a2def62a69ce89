"""Whether run_all.sh's budget leaves tuning any trials, decided without torch or optuna: a run whose
plan affords none skips the stage in about a second instead of paying their imports."""

from __future__ import annotations

import logging

from imgclf.config.schema import Config
from imgclf.data.folds import read_folds
from imgclf.data.ingest import load_competition
from imgclf.paths import Paths
from imgclf.training.status import resolve_config

log = logging.getLogger(__name__)


def budget_skips_tuning(cfg: Config, paths: Paths) -> bool:
    """True (and said) when the training plan found the budget too small for trials that can rank."""
    comp = load_competition(cfg, paths)
    _, record = resolve_config(cfg, comp, paths, read_folds(paths, comp))
    if record["plan"]["tune_trials"] != 0:
        return False
    log.info("tuning skipped: the budget of %.0f s affords too few full-length trials to rank settings "
             "(see the training plan); run tune.py --trials N, or raise --budget", cfg.budget)
    return True
