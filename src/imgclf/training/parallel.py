"""Folds trained side by side on CPU: one process per fold at a time, each on its share of the cores.

A small model on small images uses one core far better than several: on two cores, two one-thread
processes trained 1.47x the images/s of one two-thread process. Each fold process trains a fold and
writes its checkpoints and OOF exactly as the stage's own process would (the same seeds, the same
threads in every invocation), then takes the next fold. The stage keeps the folds' locks; Ctrl-C or
SIGTERM reaches every fold process, which keeps last.pt of its last write, as a fold does alone.
A last fold that would train alone (the fifth of five, two at a time) trains after the others in the
stage's process, on every core: one process on two cores trained 1.7x the images/s of one on one
core (bench/fold_parallel.py, 2026-12-08: 32 px fp32 and 64 px bf16 alike).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from tqdm.auto import tqdm

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.errors import UserError
from imgclf.paths import Paths
from imgclf.planning.hardware import FoldParallelism
from imgclf.training.fold_job import train_fold
from imgclf.training.fold_process import fold_process
from imgclf.training.threads import torch_threads

log = logging.getLogger(__name__)
STOP_WAIT_S = 120.0  # how long a stopped fold process may take to leave its epoch before it is killed


def train_folds(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, todo: list[int],
                parallel: FoldParallelism) -> None:
    """Every fold of ``todo`` on ``parallel.threads`` threads: in fold processes, ``parallel.workers``
    at a time, or (one fold left) in this process; then the lone fold (``FoldParallelism.lone_fold``)
    in this process on every worker's threads."""
    lone = parallel.lone_fold(int(folds.max()) + 1)
    shared = [fold for fold in todo if fold != lone]
    if len(shared) == 1 or parallel.workers == 1:
        with torch_threads(parallel.threads):
            for fold in shared:
                train_fold(cfg, paths, comp, folds, fold)
    elif shared:
        _train_side_by_side(cfg, paths, comp, folds, shared, parallel)
    if lone in todo:
        log.info("fold %d: alone after the others, on %d CPU threads", lone, parallel.lone_threads)
        with torch_threads(parallel.lone_threads):
            train_fold(cfg, paths, comp, folds, lone)


def _train_side_by_side(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, todo: list[int],
                        parallel: FoldParallelism) -> None:
    workers = min(parallel.workers, len(todo))
    log.info("folds %s: %d at a time, one process each with %d CPU thread(s)",
             ",".join(map(str, todo)), workers, parallel.threads)
    ctx = mp.get_context("spawn")  # a forked copy of a process that already ran OpenMP can hang
    tasks, results = ctx.Queue(), ctx.Queue()
    for fold in [*todo, *[None] * workers]:
        tasks.put(fold)
    tasks.cancel_join_thread()  # folds left unread by stopped fold processes must not block our exit
    level = logging.getLogger().getEffectiveLevel()
    # their bars off (the decoding's too): side by side they would draw over each other
    threads = str(parallel.threads)
    with _environment(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, TQDM_DISABLE="1"):
        processes = [ctx.Process(target=fold_process, name=f"fold-process-{i}",
                                 args=(cfg, paths, comp, folds, parallel.threads, level, tasks, results))
                     for i in range(workers)]
        for process in processes:
            process.start()
    try:
        _collect(results, processes, todo)
    except BaseException:
        _stop(processes)
        raise
    for process in processes:
        process.join()


def _collect(results: mp.Queue, processes: list, todo: list[int]) -> None:
    """Wait for every fold of ``todo``; the first failure (or a process that died) raises."""
    left = set(todo)
    with tqdm(total=len(todo), desc=f"folds ({len(processes)} at a time)", unit="fold") as bar:
        while left:
            try:
                kind, fold, text = results.get(timeout=1.0)
            except queue.Empty:
                ended = [p for p in processes if p.exitcode is not None]
                dead = [p for p in ended if p.exitcode != 0]
                if (dead or len(ended) == len(processes)) and results.empty():
                    how = f"a fold process died (exit code {dead[0].exitcode})" if dead else \
                        "the fold processes ended"
                    raise RuntimeError(f"{how} with fold(s) {','.join(map(str, sorted(left)))} "
                                       "unfinished") from None
                continue
            if kind == "done":
                left.discard(fold)
                bar.update(1)
            elif kind == "stopped":
                raise KeyboardInterrupt
            elif kind == "error":
                raise UserError(text)
            else:
                raise RuntimeError(f"fold {fold} failed in its fold process:\n{text}")


def _stop(processes: list) -> None:
    """SIGTERM to every fold process still running (each keeps last.pt of its last write), then wait."""
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables for the processes started inside (a spawned process reads them at start-up)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
