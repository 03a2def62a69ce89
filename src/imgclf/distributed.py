"""torchrun / DistributedDataParallel support: process group, sharding, exact gathering.

Launched by ``torchrun --nproc-per-node=N pipelines/03_train.py ...`` the usual environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...) are set; without them every function
here is a no-op for a single process. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


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


def dist_info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init_distributed() -> DistInfo:
    """Join the process group when launched by torchrun (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return dist_info()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return dist_info()


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


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(value: object, info: DistInfo) -> object:
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
