"""What an experiment's folder says about its training, read without torch: the resolved config, a
finished rerun recognised in about a second, and the CV summary printed.

``03_train.py`` asks ``finished_run`` first: when every wanted fold is done under the same config,
folds.csv and data, and the CV summary is newer than the folds, nothing is imported, checked or
rewritten; it prints the saved summary and stops.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import yaml

from imgclf.config.compare import config_differences, training_view
from imgclf.config.loading import load_config
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.folds import folds_digest, read_folds
from imgclf.data.ingest import load_competition
from imgclf.paths import Paths
from imgclf.planning.run import plan_experiment

log = logging.getLogger(__name__)


def resolve_config(cfg: Config, comp: Competition, paths: Paths, folds: np.ndarray,
                   n_extra: int = 0) -> tuple[Config, dict]:
    """Fill the data-dependent defaults (the training plan: batch, epochs, warm-up, image side; the
    label-preserving views) so the saved config reproduces the run; also returns the plan's record.
    ``n_extra``: rows each fold trains on beyond its train images (a pseudo-label student's)."""
    def measure(side: int, batch: int, threads: int | None) -> float:
        from imgclf.training.throughput import measure_images_per_s  # torch: only when not measured yet

        return measure_images_per_s(cfg, comp, side, batch, threads)

    return plan_experiment(cfg, paths, comp, folds, measure, n_extra)


def finished_run(cfg: Config, paths: Paths, only_folds: list[int] | None) -> bool:
    """True (and the saved CV summary printed) when there is nothing to train or rewrite; False
    whenever in doubt: the full path then decides, and raises where something does not match."""
    saved_config, stamp = paths.config_yaml(), paths.folds_stamp()
    summary_files = (paths.cv_json(), paths.oof_csv())
    if not (saved_config.is_file() and stamp.is_file() and all(p.is_file() for p in summary_files)):
        return False
    comp = load_competition(cfg, paths)
    folds = read_folds(paths, comp)
    n_folds = int(folds.max()) + 1
    wanted = only_folds if only_folds is not None else list(range(n_folds))
    fold_files = [paths.fold_oof(f) for f in wanted if f in range(n_folds)]
    if len(fold_files) != len(wanted) or not all(p.is_file() for p in fold_files):
        return False
    newest_fold = max(paths.fold_oof(f).stat().st_mtime_ns for f in range(n_folds)
                      if paths.fold_oof(f).is_file())
    if min(p.stat().st_mtime_ns for p in summary_files) < newest_fold:
        return False
    if stamp.read_text().strip() != folds_digest(paths):
        return False
    saved = yaml.safe_load(saved_config.read_text()) or {}
    resolved, _ = resolve_config(cfg, comp, paths, folds)
    if config_differences(training_view(saved), training_view(resolved.to_dict())):
        return False
    summary = json.loads(paths.cv_json().read_text())
    log.info("experiment '%s': fold(s) %s finished earlier; nothing to train", cfg.experiment,
             ",".join(map(str, wanted)))
    print_cv(summary)
    return True


def print_cv(summary: dict) -> None:
    metric = summary["metric"]
    lines = [f"CV {summary['experiment']} ({metric})", "fold  score"]
    lines += [f"{k:>4}  {v:.4f}" for k, v in summary["folds"].items()]
    lines.append(f"mean  {summary['mean']:.4f} +- {summary['std']:.4f}")
    lines.append("pooled OOF: " + "  ".join(f"{k} {v:.4f}" for k, v in summary["pooled"].items()))
    if not summary["complete"]:
        lines.append("(some folds are not trained yet: oof.csv is partial)")
    print("\n".join(lines))


def tuned_config(cfg: Config, paths: Paths, overrides: list[str]) -> Config | None:
    """The tuning stage's best config as its own experiment ``<experiment>_tuned``, with the user's
    ``--set`` overrides re-applied (except the experiment name), or None when there is nothing to train."""
    if not cfg.tune.train_best:
        log.info("tune.train_best is false: no tuned experiment to train")
        return None
    if not paths.best_config_yaml.is_file():
        log.warning("%s not found (tuning skipped or not run: see tune.py's output); no tuned experiment "
                    "trained", paths.best_config_yaml)
        return None
    overrides = [o for o in overrides if not o.strip().startswith("experiment=")]
    tuned = load_config(paths.best_config_yaml, [f"data.dir={paths.data_dir}", *overrides])
    return tuned.updated({"experiment": f"{cfg.experiment}_tuned"})
