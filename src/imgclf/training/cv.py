"""Cross-validation of one experiment: every fold (or the listed ones), pooled OOF and CV scores."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator

import numpy as np
import yaml

from imgclf.atomic import remove_temps, write_text
from imgclf.config.compare import config_differences, training_view
from imgclf.config.loading import dump_yaml
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.extra import extra_fingerprint, load_extra_train
from imgclf.data.folds import check_experiment_folds, folds_digest, read_folds
from imgclf.data.ingest import load_competition
from imgclf.errors import UserError
from imgclf.lock import clear_stale, hold_lock
from imgclf.paths import Paths
from imgclf.planning.hardware import FoldParallelism
from imgclf.planning.run import save_plan
from imgclf.training.distributed import dist_info, held_by_main, on_main
from imgclf.training.fold_job import train_fold
from imgclf.training.oof import summarise_cv
from imgclf.training.parallel import train_folds
from imgclf.training.preflight import check_training_inputs
from imgclf.training.status import resolve_config
from imgclf.training.student import StudentFold

log = logging.getLogger(__name__)


def prepare_experiment(cfg: Config, paths: Paths, experiment: str | None = None,
                       plan: dict | None = None) -> None:
    """Save the resolved config (and its plan); refuse to mix with checkpoints made under a different one."""
    target = paths.config_yaml(experiment)
    if target.is_file():
        saved = yaml.safe_load(target.read_text()) or {}
        diff = config_differences(training_view(saved), training_view(cfg.to_dict()))
        if diff and paths.is_trained(experiment):
            raise UserError(
                f"experiment '{experiment or cfg.experiment}' in {paths.experiment_dir(experiment)} "
                f"was trained with another config ({'; '.join(diff[:3])}); start a new one with "
                "--set experiment=NAME or delete that folder")
    write_text(target, dump_yaml(cfg))
    if plan is not None:
        save_plan(plan, paths, experiment)
    _check_folds_fingerprint(paths, experiment)


def _check_folds_fingerprint(paths: Paths, experiment: str | None) -> None:
    """Folds of one experiment must all come from the same folds.csv."""
    if paths.is_trained(experiment):
        check_experiment_folds(paths, experiment or paths.experiment,
                               "start a new one with --set experiment=NAME or delete "
                               f"{paths.experiment_dir(experiment)}")
    write_text(paths.folds_stamp(experiment), folds_digest(paths) + "\n")


def _prepare_cv(cfg: Config, paths: Paths, only_folds: list[int] | None, student_rows: int = 0
                ) -> tuple[Config, Competition, np.ndarray, list[int], FoldParallelism]:
    comp = load_competition(cfg, paths)
    folds = read_folds(paths, comp)
    cfg, plan = resolve_config(cfg, comp, paths, folds, student_rows)
    n_folds = int(folds.max()) + 1
    wanted = only_folds if only_folds is not None else list(range(n_folds))
    bad = [f for f in wanted if f not in range(n_folds)]
    if bad:
        raise UserError(f"--folds: fold {bad[0]} does not exist (folds.csv has folds 0..{n_folds - 1})")
    if any(not paths.fold_oof(f).is_file() for f in wanted):  # nothing to train: nothing to check
        check_training_inputs(cfg, comp)  # before prepare_experiment writes: bad input leaves no artefact
    prepare_experiment(cfg, paths, plan=plan)
    check_extra_train(cfg, paths, comp)
    planned = plan["plan"]
    return cfg, comp, folds, wanted, FoldParallelism(planned["fold_workers"], planned["fold_threads"])


def check_extra_train(cfg: Config, paths: Paths, comp: Competition, experiment: str | None = None) -> None:
    """Record the data.extra_train set's fingerprint; refuse a changed set under trained folds."""
    fingerprint = extra_fingerprint(load_extra_train(cfg, comp))
    target = paths.extra_train_json(experiment)
    saved = json.loads(target.read_text()).get("fingerprint") if target.is_file() else None
    if target.is_file() and saved != fingerprint and paths.is_trained(experiment):
        raise UserError(f"data.extra_train: the extra training set changed since experiment "
                        f"'{experiment or cfg.experiment}' was trained ({target}: {saved} -> {fingerprint}); "
                        "start a new one with --set experiment=NAME or delete that folder")
    if fingerprint is not None:
        write_text(target, json.dumps({"dir": str(cfg.data.extra_train), "fingerprint": fingerprint}) + "\n")


@contextlib.contextmanager
def _fold_locks(paths: Paths, todo: list[int]) -> Iterator[None]:
    """A lock per fold, not per competition: machines (or GPUs) sharing models/<comp>/ train different
    folds at once, and two runs can never train the same fold."""
    with contextlib.ExitStack() as stack:
        for fold in todo:
            stack.enter_context(hold_lock(paths.fold_lock(fold),
                                          f"fold {fold} of experiment '{paths.experiment}'"))
            # a killed run's half-written checkpoint: nobody else writes here
            remove_temps(paths.fold_dir(fold))
        yield


def run_cv(cfg: Config, paths: Paths, only_folds: list[int] | None = None,
           student: Callable[[int], StudentFold] | None = None, student_rows: int = 0) -> dict:
    """Train the wanted unfinished folds, write each fold's OOF, then merge and score the finished ones.
    ``student`` (the pseudo-label stage): fold k -> its extra rows and loss, asked for only when fold
    k is trained; ``student_rows``: how many extra rows a fold gets (mean over folds), for the plan.

    Under torchrun all ranks train each fold together; rank 0 alone reads and writes models/<comp>/
    (the others get what it read), so other machines need only the competition's images.
    """
    info = dist_info()
    cfg, comp, folds, wanted, parallel = on_main(lambda: _prepare_cv(cfg, paths, only_folds, student_rows),
                                                 info)
    n_folds = int(folds.max()) + 1
    todo = on_main(lambda: [f for f in wanted if not paths.fold_oof(f).is_file()], info)
    for fold in sorted(set(wanted) - set(todo)):
        log.info("fold %d: finished earlier, skipped", fold)
        if info.is_main:
            clear_stale(paths.fold_lock(fold))  # left by a run killed after it finished this fold
    with held_by_main(lambda: _fold_locks(paths, todo), info):
        if student is None and not info.enabled:
            train_folds(cfg, paths, comp, folds, todo, parallel)
        else:  # a student's extra rows are built per fold here; under torchrun every rank trains each fold
            for fold in todo:
                train_fold(cfg, paths, comp, folds, fold, student=None if student is None else student(fold),
                           is_main=info.is_main)
    return on_main(lambda: summarise_cv(cfg, paths, comp, n_folds), info)

