"""The machine a plan is made for, without torch where it can be helped: CPU cores or GPUs, a rough
throughput for estimates, and how many folds train side by side on CPU."""

from __future__ import annotations

import glob
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from imgclf.config.schema import Config

# A rough throughput of resnet10t-sized models (images/s at 32 px, forward + backward + step,
# augmentation included) for estimates the budget does not depend on; a budgeted plan measures
# its own (training.throughput). Two CPU cores measured ~160/s (batch 16, 32 px).
CPU_IMAGES_PER_S_PER_CORE_32PX = 100.0
CUDA_IMAGES_PER_S_32PX = 12000.0
# (image side, batch, CPU threads of the training process or None for all) -> training images/s
RateFn = Callable[[int, int, "int | None"], float]
# Fold processes on CPU: each trains at this share of its throughput measured alone (they share
# the memory bus and the caches). Two slow cores, resnet10t 32 px batch 16, one thread each
# (2026-12-07): colour6's and texture4's fold processes trained at 111-124 images/s side by side
# against 130-142 measured alone (0.81-0.87), and at 131-145 once alone; bench/fold_parallel.py
# measured 0.9-1.2 (this VM's throughput moves by +-20% between runs). The lower end: a plan that
# expects too much overruns its budget.
CONCURRENT_EFFICIENCY = 0.85
# The fold processes' start-up, once per experiment: an interpreter, torch and timm, the fold's
# images decoded. colour6 on two slow cores (2026-12-07): 8 s from the start to the first epoch's
# line, 1.4 s of it that epoch.
FOLD_PROCESS_START_S = 7.0
# A fold that trains on fewer images than this runs in the stage's own process: at ~150 images/s
# its training would take less than three of the fold processes' start-ups.
PARALLEL_MIN_IMAGES = 4000


@dataclass(frozen=True)
class Hardware:
    device: str  # "cpu" | "cuda"
    cpus: int
    gpus: int = 0

    def images_per_s(self, side: int, batch: int = 32, threads: int | None = None) -> float:
        """Estimated training images/s at ``side`` px and ``batch`` on ``threads`` CPU threads (all
        by default; small sides do not get faster than 32 px; on CPU a batch of 16 runs ~0.7x the
        images/s of one of 32, measured)."""
        scale = (32 / max(side, 32)) ** 2 * min(1.0, (batch / 32) ** 0.5)
        if self.device == "cuda":
            return CUDA_IMAGES_PER_S_32PX * max(1, self.gpus) * scale
        return CPU_IMAGES_PER_S_PER_CORE_32PX * max(1, min(threads or self.cpus, self.cpus)) * scale


@dataclass(frozen=True)
class FoldParallelism:
    """How the folds of an experiment train: ``workers`` at a time, each in its own process with
    ``threads`` CPU threads (``workers`` 1 and ``threads`` None: one after another in the stage's
    process, on every thread)."""

    workers: int = 1
    threads: int | None = None

    def rounds(self, n_folds: int) -> int:
        """Folds one after another in wall time: 5 folds 2 at a time take 3 fold times."""
        return math.ceil(n_folds / self.workers)


def usable_cpus(hw: Hardware) -> int:
    """The cores a run may use: the machine's, or fewer when OMP_NUM_THREADS says so."""
    try:
        limit = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        limit = hw.cpus
    return max(1, min(hw.cpus, limit if limit > 0 else hw.cpus))


def fold_parallelism(cfg: Config, hw: Hardware, n_folds: int, images_per_fold: int) -> FoldParallelism:
    """Folds side by side on CPU (``plan.fold_workers``, up to the machine's cores; null: one per core
    that OMP_NUM_THREADS leaves, up to the folds, when the folds are worth a process each): a small
    model uses one core far better than several (two one-thread processes trained 1.47x the images/s
    of one two-thread process here). The decision depends on the machine, the config and the data
    only, never on which folds are left, so a fold trains on the same threads in every invocation
    (``--folds 0`` then ``--folds 1,2`` give the same weights as one run). ``images_per_fold``: the
    images a fold is planned to train on before the budget cuts (small folds are not worth a process)."""
    if hw.device != "cpu" or n_folds < 2 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return FoldParallelism()
    cores, asked = usable_cpus(hw), cfg.plan.fold_workers
    workers = min(asked, hw.cpus, n_folds) if asked else min(cores, n_folds)
    if workers < 2 or (asked is None and images_per_fold < PARALLEL_MIN_IMAGES):
        return FoldParallelism()
    return FoldParallelism(workers, max(1, cores // workers))


def no_gpu_device_node() -> bool:
    """True on a Linux machine with no NVIDIA (or ROCm, or WSL) GPU device node, where CUDA cannot be
    available: the plan learns it without importing torch (3.5 s on two slow cores, in every stage
    that plans)."""
    if not sys.platform.startswith("linux"):
        return False
    return not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd") or os.path.exists("/dev/dxg"))


def available_cpus() -> int:
    """The cores this process may run on (its affinity mask, e.g. under taskset or a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def detect_hardware(cfg: Config) -> Hardware:
    cpus = available_cpus()
    if cfg.device == "cpu" or no_gpu_device_node():
        return Hardware("cpu", cpus)
    import torch  # only here: the plan itself is plain arithmetic

    if torch.cuda.is_available():
        return Hardware("cuda", cpus, torch.cuda.device_count())
    return Hardware("cpu", cpus)
