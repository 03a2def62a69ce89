"""One fold's whole job, as the stage's process or a fold process runs it: train, then write its OOF."""

from __future__ import annotations

import multiprocessing as mp
import traceback

import numpy as np

from imgclf.atomic import write_csv
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.errors import UserError, one_line
from imgclf.metrics import score_all
from imgclf.paths import Paths
from imgclf.training.fit import run_fold
from imgclf.training.oof import predict_fold_oof
from imgclf.training.student import StudentFold
from imgclf.training.threads import torch_threads
from imgclf.training.trackers import FoldTrackers, wants_trackers


def train_fold(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, fold: int,
               student: StudentFold | None = None, is_main: bool = True) -> None:
    """Train ``fold`` (resuming its last.pt) and write its OOF predictions, with its trackers."""
    trackers = FoldTrackers(cfg, paths, fold) if is_main and wants_trackers(cfg) else None
    run_fold(cfg, paths, comp, folds, fold, student=student, trackers=trackers)
    oof = predict_fold_oof(cfg, paths, comp, folds, fold)
    if is_main:
        write_csv(paths.fold_oof(fold), oof)
        if trackers is not None:
            scores = score_all(comp.labels_of(oof["id"]), oof[comp.classes].to_numpy(), task=comp.task)
            trackers.finish(scores)


def run_fold_tasks(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, threads: int,
                   tasks: mp.Queue, results: mp.Queue) -> None:
    """Folds from ``tasks`` until its None, each result (or the failure, then no more) to ``results``."""
    with torch_threads(threads):
        while (fold := tasks.get()) is not None:
            try:
                train_fold(cfg, paths, comp, folds, fold)
            except KeyboardInterrupt:
                results.put(("stopped", fold, ""))
                return
            except UserError as exc:
                results.put(("error", fold, one_line(exc)))
                return
            except Exception:
                results.put(("crash", fold, traceback.format_exc()))
                return
            results.put(("done", fold, ""))
