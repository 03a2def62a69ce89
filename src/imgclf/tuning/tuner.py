"""Optuna search: the config's ``tune.space`` sampled by a seeded TPE, trials pruned per epoch, studies
kept in a journal file (or PostgreSQL) so runs resume and several workers share one study.

A trial trains the base config with the trial's params on ``tune.folds`` (for ``tune.epochs`` epochs
when set) and returns the mean of the folds' best validation scores. Its files go to
``models/<comp>/tune/trials/<number>/``; checkpoints are deleted when it ends, histories are kept.
``--trials N`` and what counts as a trial: see ``tuning.workers``; the space, sampler and
pruner: ``tuning.search``; where studies live: ``tuning.storage``; the files written: ``tuning.report``.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import optuna
import torch

from imgclf.atomic import write_text
from imgclf.config.compare import config_differences, training_view
from imgclf.config.loading import dump_yaml
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.folds import read_folds
from imgclf.data.ingest import load_competition
from imgclf.errors import UserError
from imgclf.metrics import greater_is_better
from imgclf.paths import Paths
from imgclf.planning.plan import tuning_seconds
from imgclf.training.fit import run_fold
from imgclf.training.preflight import check_training_inputs
from imgclf.training.status import resolve_config
from imgclf.tuning.report import print_summary, write_outputs
from imgclf.tuning.search import check_space, make_pruner, make_sampler, suggest
from imgclf.tuning.storage import open_storage, storage_label
from imgclf.tuning.workers import (
    OWNER_ATTR,
    REASON_ATTR,
    SurplusTrial,
    admit,
    fail_stale_trials,
    more_wanted,
    owner_record,
)

log = logging.getLogger(__name__)
MAX_FAILURES_IN_A_ROW = 10  # a worker whose trials keep failing stops instead of looping forever
FINGERPRINT_ATTR = "base_config"


def fingerprint(cfg: Config) -> dict:
    """What must not change within a study: training config, space, folds and trial epochs."""
    tc = cfg.to_dict()["tune"]
    return {**training_view(cfg.to_dict()), "tune": {k: tc[k] for k in ("space", "folds", "epochs")}}


def open_study(cfg: Config, paths: Paths, steps: int) -> optuna.Study:
    storage = open_storage(cfg.tune.storage, paths)
    name = cfg.tune.study or f"{paths.comp}-{cfg.experiment}"
    direction = "maximize" if greater_is_better(cfg.metric) else "minimize"
    study = optuna.create_study(study_name=name, storage=storage, sampler=make_sampler(cfg),
                                pruner=make_pruner(cfg, steps), direction=direction, load_if_exists=True)
    saved, current = study.user_attrs.get(FINGERPRINT_ATTR), fingerprint(cfg)
    if saved is None:
        study.set_user_attr(FINGERPRINT_ATTR, current)
    elif saved != current:
        diff = config_differences(saved, current)
        raise UserError(f"study '{name}' in {storage_label(cfg.tune.storage, paths)} was run with another "
                        f"config ({'; '.join(diff[:3])}); use --study NEW_NAME, or delete the study")
    return study


def tune_timeout(cfg: Config, fixed_s: float) -> float | None:
    """``tune.timeout``, or when null the share of the run's budget that training leaves to tuning
    (``fixed_s``: the run's time outside training, as its plan counted it)."""
    if cfg.tune.timeout is not None or cfg.budget is None:
        return cfg.tune.timeout
    share = tuning_seconds(cfg, fixed_s)
    log.info("tune.timeout not set: %.0f s, the budget's share for tuning", share)
    return share


def trial_epochs(cfg: Config) -> int | None:
    """``tune.epochs`` shortens every trial, unless ``train.epochs`` is itself searched (or it is null)."""
    return cfg.tune.epochs if cfg.tune.epochs and "train.epochs" not in cfg.tune.space else None


class Tuner:
    """The objective and the per-trial callback of one worker."""

    def __init__(self, cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray) -> None:
        self.cfg, self.paths, self.comp, self.folds = cfg, paths, comp, folds
        self.failures_in_a_row = 0
        self.last_failure = ""

    def trial_dir(self, number: int) -> Path:
        return self.paths.experiment_dir(self.paths.tune_trial_experiment(number))

    def objective(self, trial: optuna.Trial) -> float:
        try:
            self._admit(trial)
            return self._train(trial)
        except optuna.TrialPruned:
            raise
        except BaseException as exc:  # recorded for every failure, then Optuna marks the trial FAIL
            reason = str(exc) if isinstance(exc, SurplusTrial) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr(REASON_ATTR, reason[:500])
            if not isinstance(exc, SurplusTrial):
                log.warning("trial %d failed: %s", trial.number, reason)
                _free_gpu_memory()
            raise
        finally:
            self._drop_checkpoints(trial.number)

    def _admit(self, trial: optuna.Trial) -> None:
        trial.set_user_attr(OWNER_ATTR, owner_record())
        for number in fail_stale_trials(trial.study):
            self._drop_checkpoints(number)
        if not admit(trial.study, trial.number, self.cfg.tune.trials):
            trial.study.stop()
            raise SurplusTrial(f"surplus: the study already has {self.cfg.tune.trials} trials "
                               "running or done")

    def _train(self, trial: optuna.Trial) -> float:
        run_cfg = suggest(trial, self.cfg)
        if trial_epochs(self.cfg):
            run_cfg = run_cfg.updated({"train.epochs": trial_epochs(self.cfg)})
        shutil.rmtree(self.trial_dir(trial.number), ignore_errors=True)  # never resume another run's trial
        experiment = self.paths.tune_trial_experiment(trial.number)
        write_text(self.paths.config_yaml(experiment), dump_yaml(run_cfg))
        epochs, scores = run_cfg.train.epochs, []
        last_step = epochs * len(self.cfg.tune.folds)
        for i, fold in enumerate(self.cfg.tune.folds):
            report = self._reporter(trial, fold, offset=i * epochs, last_step=last_step)
            scores.append(run_fold(run_cfg, self.paths, self.comp, self.folds, fold, experiment, report))
            trial.set_user_attr(f"fold{fold}", scores[-1])
        return float(np.mean(scores))

    def _reporter(self, trial: optuna.Trial, fold: int, offset: int, last_step: int):
        def report(epoch: int, score: float) -> None:
            if math.isfinite(score):
                trial.report(score, offset + epoch)
            # After the last epoch nothing is left to save: the trial completes and competes.
            if offset + epoch < last_step and trial.should_prune():
                raise optuna.TrialPruned(f"after epoch {epoch} of fold {fold}: {self.cfg.metric} {score:.4f}")
        return report

    def _drop_checkpoints(self, number: int) -> None:
        for ckpt in self.trial_dir(number).glob("fold*/*.pt"):
            ckpt.unlink(missing_ok=True)

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        reason = trial.user_attrs.get(REASON_ATTR, "")
        if trial.state == optuna.trial.TrialState.FAIL and not reason.startswith("surplus"):
            self.failures_in_a_row, self.last_failure = self.failures_in_a_row + 1, reason
        elif trial.state != optuna.trial.TrialState.FAIL:
            self.failures_in_a_row = 0
        for number in fail_stale_trials(study):  # a killed worker's trial is taken over, not waited for
            self._drop_checkpoints(number)
        trials = study.get_trials(deepcopy=False)
        if not more_wanted(trials, self.cfg.tune.trials) or self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            study.stop()
        write_outputs(study, self.cfg, self.paths, plots=False)


class _QuietSurplus(logging.Filter):
    """Optuna logs every failed trial with its traceback; a surplus trial is routine, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], SurplusTrial):
            record.exc_info, record.exc_text = None, None
        return True


def _free_gpu_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def tune(cfg: Config, paths: Paths) -> optuna.Study:
    """Run this worker's share of the study; returns the study (shared by every worker). Whether the
    budget affords tuning at all is ``tuning.budget``'s question, asked before this."""
    comp = load_competition(cfg, paths)
    folds = read_folds(paths, comp)
    cfg, record = resolve_config(cfg, comp, paths, folds)
    n_folds = int(folds.max()) + 1
    bad = [f for f in cfg.tune.folds if f not in range(n_folds)]
    if bad or not cfg.tune.folds:
        raise UserError(f"tune.folds: fold {bad[0] if bad else '(none)'} does not exist "
                        f"(folds.csv has folds 0..{n_folds - 1})")
    check_space(cfg)
    check_training_inputs(cfg, comp)  # one clear error now rather than every trial failing on it
    epochs = trial_epochs(cfg) or cfg.train.epochs
    study = open_study(cfg, paths, epochs * len(cfg.tune.folds))
    tuner = Tuner(cfg, paths, comp, folds)
    optuna_log = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _QuietSurplus) for f in optuna_log.filters):
        optuna_log.addFilter(_QuietSurplus())
    for number in fail_stale_trials(study):
        tuner._drop_checkpoints(number)
    if more_wanted(study.get_trials(deepcopy=False), cfg.tune.trials):
        timeout = tune_timeout(cfg, record["plan"]["fixed_seconds"])
        study.optimize(tuner.objective, timeout=timeout, catch=(Exception,), callbacks=[tuner.after_trial],
                       gc_after_trial=True)
    else:
        log.info("study '%s' already has its %d trials", study.study_name, cfg.tune.trials)
    write_outputs(study, cfg, paths, plots=True)
    print_summary(study, cfg, paths)
    if tuner.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
        raise UserError(f"{MAX_FAILURES_IN_A_ROW} trials in a row failed, the last with: "
                        f"{tuner.last_failure}; check tune.space and the trials' logs")
    return study
