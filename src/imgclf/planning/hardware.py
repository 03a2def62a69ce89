"""The machine a plan is made for, without torch where it can be helped: CPU cores or GPUs, a rough
throughput for estimates, and how many folds train side by side on CPU and how fast."""

from __future__ import annotations

import functools
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
# bf16 on AMX (64 px, batch 16): each of two one-thread processes at once trained 1.03x the images/s
# of one alone (bench/fold_parallel.py, 2026-12-07), and the demo's fold processes 1.17x the plan's
# figure: the tiles are per core and the small bf16 working set spares the shared caches.
CONCURRENT_EFFICIENCY_BF16 = 1.0
# resnet10t, batch 16, one thread of a CPU with AMX (2026-12-07), fp32 -> bf16 with channels_last:
# 32 px 272 -> 225 images/s, 48 px 149 -> 205, 64 px 109 -> 180. Small maps do not fill the tiles.
CPU_BF16_MIN_SIDE = 48
# Below this side not even an explicit train.amp=bf16 autocasts on CPU: oneDNN's bf16 weight gradient
# of a strided 3x3 convolution that sees a 1x1 map is garbage (3e37 or nan in 20-40% of calls;
# torch 2.14.1, 2026-12-08), and a 32x-downsampling network's last strided convolution sees one at
# 16 px. From 32 px it sees 2x2 maps, whose gradients match fp32 to 0.5%.
CPU_BF16_SAFE_SIDE = 32
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
    # A CPU with bf16 matrix units (Intel AMX): bf16 autocast trains images of 48 px and more
    # 1.4-1.8x faster than fp32 there, so upsampling tiny images costs far less (training.engine).
    cpu_bf16: bool = False

    def cheap_pixels(self, amp: str, side: int) -> bool:
        """Whether a ``side`` px step (64) costs under ~1.5x a 32 px one under ``train.amp``: a GPU,
        or bf16 autocast (``cpu_autocasts_bf16``) on a CPU's matrix units; fp32 on CPU costs 2.5x
        (resnet10t, batch 16, one thread: 109 against 272 images/s)."""
        return self.device == "cuda" or (self.cpu_bf16 and cpu_autocasts_bf16(amp, side, matrix_units=True))

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

    def lone_fold(self, n_folds: int) -> int | None:
        """The last fold when the others fill whole rounds and it would train alone (5 folds 2 at a
        time): it trains after them, in the stage's process, on every worker's threads, where one
        thread would leave the other cores idle for a whole fold time. Which fold it is depends on
        the folds only, never on which are left, so it trains on the same threads in every invocation."""
        if self.workers < 2 or n_folds % self.workers != 1:
            return None
        return n_folds - 1

    @property
    def lone_threads(self) -> int:
        return self.workers * (self.threads or 1)

    def fold_times(self, n_folds: int, lone_speedup: float = 1.0) -> float:
        """The folds' training in wall time, in fold times side by side: 4 folds 2 at a time take 2,
        and a lone fifth fold ``1 / lone_speedup`` more (its speed on every worker's threads against
        one fold's side by side)."""
        if self.lone_fold(n_folds) is None:
            return float(math.ceil(n_folds / self.workers))
        return n_folds // self.workers + 1 / lone_speedup


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


@dataclass
class FoldRate:
    """How the folds train: side by side or not, the training images/s of one fold process alone and
    of each while they train side by side, their wall time in fold times, and the plan's lines."""

    parallel: FoldParallelism
    alone: float
    each: float
    fold_times: float
    reasons: list[str]


def fold_rate(cfg: Config, hw: Hardware, n_folds: int, shape: tuple[int, int, int],
               rate_of: RateFn | None) -> FoldRate:
    """How the folds of a plan train and how fast; ``shape``: image side, batch and the images a
    fold trains on; ``rate_of``: the measured throughput (default: the rough estimate)."""
    side, batch, images_per_fold = shape
    parallel = fold_parallelism(cfg, hw, n_folds, images_per_fold)
    measure = rate_of or hw.images_per_s
    alone = measure(side, batch, parallel.threads)
    threads = f" with {parallel.threads} thread(s)" if parallel.threads else ""
    reasons = [f"~{alone:.0f} training images/s on {hw.device}{threads} "
               f"({'measured' if rate_of else 'rough estimate'})"]
    bf16 = hw.device == "cpu" and cpu_autocasts_bf16(cfg.train.amp, side, hw.cpu_bf16)
    if hw.device == "cpu" and cfg.train.amp == "bf16" and not bf16:
        reasons.append(f"train.amp=bf16 not taken: {side} px images train in fp32 on CPU (oneDNN's bf16 "
                       f"gradients of 1x1 maps are wrong)")
    if parallel.workers == 1:
        return FoldRate(parallel, alone, alone, float(n_folds), reasons)
    each = alone * (CONCURRENT_EFFICIENCY_BF16 if bf16 else CONCURRENT_EFFICIENCY)
    reasons.append(f"folds train {parallel.workers} at a time, one process each with {parallel.threads} CPU "
                   f"thread(s) (~{each:.0f} images/s each)")
    lone = parallel.lone_fold(n_folds)
    if lone is None:
        return FoldRate(parallel, alone, each, parallel.fold_times(n_folds), reasons)
    lone_rate = measure(side, batch, parallel.lone_threads)
    reasons.append(f"fold {lone} trains after the others on {parallel.lone_threads} threads "
                   f"(~{lone_rate:.0f} images/s)")
    return FoldRate(parallel, alone, each, parallel.fold_times(n_folds, lone_rate / each), reasons)


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


@functools.cache
def cpu_has_bf16_matrix_units() -> bool:
    """True on a Linux CPU whose flags list Intel AMX's bf16 tiles (``amx_bf16``): oneDNN then runs
    bf16 convolutions on them. Read from /proc/cpuinfo, without torch; elsewhere False (fp32)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def cpu_autocasts_bf16(amp: str, side: int | None, matrix_units: bool) -> bool:
    """Whether training on CPU autocasts to bf16: ``train.amp`` bf16 for images of
    ``CPU_BF16_SAFE_SIDE`` px and more (or of a side not known), or auto on a CPU with bf16
    ``matrix_units`` for images of ``CPU_BF16_MIN_SIDE`` px and more (the engine and the plan ask here)."""
    if amp == "bf16":
        return side is None or side >= CPU_BF16_SAFE_SIDE
    return amp == "auto" and matrix_units and (side or 0) >= CPU_BF16_MIN_SIDE


def detect_hardware(cfg: Config) -> Hardware:
    cpus = available_cpus()
    if cfg.device == "cpu" or no_gpu_device_node():
        return Hardware("cpu", cpus, cpu_bf16=cpu_has_bf16_matrix_units())
    import torch  # only here: the plan itself is plain arithmetic

    if torch.cuda.is_available():
        return Hardware("cuda", cpus, torch.cuda.device_count())
    return Hardware("cpu", cpus, cpu_bf16=cpu_has_bf16_matrix_units())
