"""torchrun / DistributedDataParallel support: process group, sharding, exact gathering.

Launched by ``torchrun --nproc-per-node=N pipelines/03_train.py ...`` the usual environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...) are set; without them every function
here is a no-op for a single process. Only rank 0 writes files, takes locks and reports errors;
``on_main`` runs such work on rank 0 and hands its result (or its error) to every rank, so that no
rank waits forever for one that failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from imgclf.errors import UserError
from imgclf.planning.hardware import available_cpus

log = logging.getLogger(__name__)
T = TypeVar("T")
# Rank 0 alone may work for a long time while the others wait in a collective (decoding the image
# cache of a large competition, predicting OOF); a crashed peer is noticed at once anyway (its
# sockets close), so the timeout only has to outlast legitimate waits.
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class PeerFailed(Exception):
    """Rank 0 failed (and reported why); this rank stops quietly."""


def launched_rank() -> int:
    """This process's rank as set by torchrun (0 when not launched by it), usable before the group exists."""
    return int(os.environ.get("RANK", "0"))


def launched_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def dist_info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init_distributed(device: torch.device | None = None) -> DistInfo:
    """Join the process group when launched by torchrun: NCCL when training on CUDA, gloo on CPU."""
    if launched_world() <= 1 or (dist.is_available() and dist.is_initialized()):
        return dist_info()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_cuda = device.type == "cuda" if device is not None else torch.cuda.is_available()
    if on_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if on_cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return dist_info()


def cpu_threads_per_rank() -> int:
    """The fair share of this machine's cores for one of its ranks (2 cores, 2 ranks: 1 thread each)."""
    cpus = available_cpus()
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", launched_world()))
    return max(1, cpus // max(1, local_world))


@contextlib.contextmanager
def distributed_session(device: torch.device) -> Iterator[DistInfo]:
    """The process group for one stage run under torchrun (a plain single process otherwise)."""
    if launched_world() <= 1:
        yield DistInfo()
        return
    info = init_distributed(device)
    if device.type == "cpu":
        # torchrun sets OMP_NUM_THREADS=1 for every rank, wasting big machines; more threads than the
        # fair share oversubscribes the cores and slows every rank down
        torch.set_num_threads(cpu_threads_per_rank())
    if not info.is_main:  # rank 0 logs for everyone
        logging.getLogger().setLevel(logging.ERROR)
    log.info("DistributedDataParallel: %d processes (%s), %s", info.world, dist.get_backend(),
             f"{torch.get_num_threads()} CPU thread(s) each" if device.type == "cpu" else "one GPU each")
    yield info
    shutdown()  # only after success: after a failure the process exits at once (a dead peer can block it)


def device_for(info: DistInfo, default: torch.device) -> torch.device:
    if info.enabled and default.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return default


def shard(indices: np.ndarray, info: DistInfo) -> np.ndarray:
    """This rank's share of ``indices`` without padding, so every row is predicted exactly once."""
    return indices[info.rank::info.world] if info.enabled else indices


def gather_rows(values: np.ndarray, rows: np.ndarray, info: DistInfo) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate every rank's (values, rows), sorted by row and de-duplicated."""
    if not info.enabled:
        return values, rows
    parts: list = [None] * info.world
    dist.all_gather_object(parts, (values, rows))
    all_values = np.concatenate([p[0] for p in parts])
    all_rows = np.concatenate([p[1] for p in parts])
    unique, first = np.unique(all_rows, return_index=True)
    return all_values[first], unique


def sum_across(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64)."""
    if not info.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def sync_module(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers into every rank's ``module``: DDP keeps parameters equal,
    but each rank updates BatchNorm statistics (and their EMA) with its own batches."""
    if not info.enabled:
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def broadcast_object(value: object, info: DistInfo) -> object:
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn: Callable[[], T], info: DistInfo) -> T:
    """``fn()`` on rank 0 only, its result broadcast to every rank. A UserError there is raised on every
    rank with the same message; any other failure stops the other ranks with PeerFailed."""
    if not info.enabled:
        return fn()
    outcome: tuple[str, object] = ("ok", None)
    error: BaseException | None = None
    if info.is_main:
        try:
            outcome = ("ok", fn())
        except UserError as exc:
            outcome, error = ("user", str(exc)), exc
        except BaseException as exc:
            outcome, error = ("failed", None), exc
    status, payload = broadcast_object(outcome, info)  # type: ignore[misc]
    if error is not None:
        raise error
    if status == "user":
        raise UserError(str(payload))
    if status == "failed":
        raise PeerFailed("rank 0 failed")
    return payload  # type: ignore[return-value]


def main_first(fn: Callable[[], T], info: DistInfo) -> T:
    """``fn()`` on rank 0, then on the other ranks: for work that fills a shared cache file once."""
    mine: list = [None]

    def first() -> None:
        mine[0] = fn()

    on_main(first, info)
    return mine[0] if info.is_main else fn()


@contextlib.contextmanager
def held_by_main(make: Callable[[], contextlib.AbstractContextManager], info: DistInfo) -> Iterator[None]:
    """Enter the context manager ``make()`` (a lock) on rank 0 only; if that fails every rank stops."""
    with contextlib.ExitStack() as stack:

        def enter() -> None:
            stack.enter_context(make())

        on_main(enter, info)
        yield


def is_peer_failure(exc: BaseException) -> bool:
    """A collective failed because another rank died (its own error is reported by that rank)."""
    if isinstance(exc, PeerFailed | dist.DistError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer",
                            "NCCL communicator was aborted"))


def record_error(line: str) -> None:
    """Give torchrun this rank's one-line error for its failure summary (instead of 'To enable
    traceback see ...'); a no-op outside torchrun."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path and launched_world() > 1:
        with contextlib.suppress(OSError), open(path, "w") as handle:
            # the layout torchrun's own @record writes; it shows "py_callstack" as the rank's traceback
            json.dump({"message": {"message": line, "extraInfo": {"py_callstack": line,
                                                                 "timestamp": str(int(time.time()))}}},
                      handle)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
