"""Datasets and loaders: uint8 HWC images (from the decoded cache or the files), labels, row index."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, WeightedRandomSampler
from tqdm.auto import tqdm

from imgclf.atomic import atomic_path
from imgclf.config.schema import Config
from imgclf.data.crop import CropPlan
from imgclf.data.images import read_resized
from imgclf.paths import Paths
from imgclf.planning.hardware import available_cpus
from imgclf.training.distributed import DistInfo

log = logging.getLogger(__name__)


class ImageDataset(Dataset):
    """Row ``i`` -> (HxWx3 uint8 tensor, label or -1, i); a multi-label dataset's ``labels`` are a
    0/1 matrix [n, L] and its targets float vectors."""

    def __init__(self, paths: list[Path] | np.ndarray, labels: np.ndarray | None, size: int,
                 transform: A.Compose | None = None, images: np.ndarray | None = None,
                 crop: CropPlan | None = None, pseudo_from: int | None = None):
        self.paths = [str(p) for p in paths]
        self.pseudo_from = pseudo_from  # rows from here on are a student's pseudo-labelled test images
        self.crop = crop  # applied when decoding from the files (the cache has it baked in)
        self.labels = np.full(len(self.paths), -1, dtype=np.int64) if labels is None else np.asarray(labels)
        self.size = size
        self.transform = transform
        self.images = images  # decoded cache rows aligned with paths, or None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int | torch.Tensor, int]:
        image = (np.array(self.images[i]) if self.images is not None
                 else read_resized(self.paths[i], self.size, self.crop))
        if self.transform is not None and self.transform.transforms:
            image = self.transform(image=np.ascontiguousarray(image))["image"]
        label = self.labels[i]
        if np.ndim(label):
            target = torch.from_numpy(label.astype(np.float32))
        else:  # a regression target stays a number
            target = float(label) if np.issubdtype(self.labels.dtype, np.floating) else int(label)
        return torch.from_numpy(np.ascontiguousarray(image)), target, i

    def reseed(self, seed: int) -> None:
        if self.transform is not None:
            self.transform.set_random_seed(seed)


def _worker_init(_: int) -> None:
    cv2.setNumThreads(0)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        info.dataset.reseed(int(torch.initial_seed() % 2**31))


def auto_num_workers(cfg: Config, device: torch.device, cached: bool) -> int:
    if cfg.train.num_workers is not None:
        return cfg.train.num_workers
    cpus = available_cpus()
    if device.type == "cuda":
        return min(8, max(1, cpus - 1))
    # On CPU the model competes with workers for the same cores; cached uint8 images are cheap.
    return 0 if cached or cpus <= 2 else min(4, cpus // 2)


class DistributedWeightedSampler(Sampler[int]):
    """Class-balanced sampling with replacement under DDP: every rank draws the same seeded global
    sample and keeps every world-th index, so the ranks together see one weighted epoch."""

    def __init__(self, weights: np.ndarray, world: int, rank: int, seed: int):
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.world, self.rank, self.seed, self.epoch = world, rank, seed, 0
        self.num_samples = -(-len(weights) // world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.num_samples * self.world, replacement=True,
                                  generator=generator)
        return iter(drawn[self.rank::self.world].tolist())

    def __len__(self) -> int:
        return self.num_samples


def train_batches(n_train: int, batch_size: int, world: int = 1) -> int:
    """Batches per epoch and process (``train.batch_size`` is per process: DDP's global batch is
    batch_size x processes); the last partial batch is dropped unless it is the only one."""
    per_rank = -(-n_train // world)
    return max(1, per_rank // batch_size) if per_rank > batch_size else 1


class MixedBatches(Sampler[list[int]]):
    """``pseudo.schedule: mixed``: the batches of an epoch over the labelled rows, in ``labelled``'s
    order (as a teacher's epoch goes: the last partial batch dropped unless it is the only one), each
    followed by ``per_batch`` rows of ``pseudo`` drawn without replacement and reshuffled when used up.
    The labelled images are seen as often as the teacher saw them, in as many updates; the
    pseudo-labelled rows come on top, so a gain over the teacher is theirs (FixMatch's and Noisy
    Student's batches: labelled and unlabelled parts at a fixed ratio)."""

    def __init__(self, labelled: Sequence[int], pseudo: np.ndarray, batch: int, per_batch: int, seed: int):
        self.labelled, self.pseudo = list(labelled), np.asarray(pseudo)
        self.batch, self.per_batch, self.seed = batch, per_batch, seed

    def __len__(self) -> int:
        return train_batches(len(self.labelled), self.batch)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed)
        stream: list[int] = []
        for b in range(len(self)):
            while len(stream) < self.per_batch:
                stream += rng.permutation(self.pseudo).tolist()
            yield self.labelled[b * self.batch:(b + 1) * self.batch] + stream[:self.per_batch]
            stream = stream[self.per_batch:]


def epoch_rows(dataset: ImageDataset, cfg: Config) -> int:
    """The rows an epoch passes over: every row, or under ``pseudo.schedule: mixed`` the labelled
    ones (the pseudo-labelled rows ride along in each batch)."""
    mixed = dataset.pseudo_from is not None and cfg.pseudo.schedule == "mixed"
    return dataset.pseudo_from if mixed else len(dataset)


def make_loader(dataset: ImageDataset, cfg: Config, device: torch.device, train: bool,
                seed: int = 0, labels_for_sampler: np.ndarray | None = None,
                dist: DistInfo | None = None, epoch: int = 0, rows: np.ndarray | None = None) -> DataLoader:
    """``dist`` (training under DDP): this rank's share of the epoch, drawn from ``seed`` + ``epoch``;
    ``rows`` (evaluation): predict only these rows, in this order."""
    workers = auto_num_workers(cfg, device, dataset.images is not None)
    common = {"num_workers": workers, "pin_memory": device.type == "cuda", "persistent_workers": False,
              "worker_init_fn": _worker_init, "generator": torch.Generator().manual_seed(seed)}
    world, rank = (dist.world, dist.rank) if dist is not None and dist.enabled else (1, 0)
    n = epoch_rows(dataset, cfg) if train else len(dataset)
    sampler: Sampler | list[int] | None = None
    if train:
        labels = None if labels_for_sampler is None else np.asarray(labels_for_sampler)[:n]
        sampler = _train_sampler(n, cfg, labels, seed, world, rank, epoch)
    elif rows is not None:
        sampler = rows.tolist()
    if train and n < len(dataset):
        order = list(sampler) if sampler is not None else torch.randperm(
            n, generator=torch.Generator().manual_seed(seed)).tolist()
        batches = MixedBatches(order, np.arange(n, len(dataset)), cfg.train.batch_size,
                               cfg.pseudo.rows_per_batch(cfg.train.batch_size), seed + 7919 * rank)
        return DataLoader(dataset, batch_sampler=batches, **common)
    batch = cfg.train.batch_size if train else cfg.infer.batch_size
    return DataLoader(dataset, batch_size=batch, shuffle=train and sampler is None, sampler=sampler,
                      drop_last=train and (len(sampler) if sampler is not None else n) > batch, **common)


def _train_sampler(n: int, cfg: Config, labels: np.ndarray | None, seed: int, world: int, rank: int,
                   epoch: int) -> Sampler | None:
    """Training rows 0..n-1 in this epoch's order: class-balanced (``train.sampler: weighted``),
    this rank's share under DDP, or None (a plain shuffle)."""
    sampler: Sampler | None = None
    if cfg.train.sampler == "weighted":
        if np.issubdtype(labels.dtype, np.floating):  # regression: its quintiles
            labels = np.digitize(labels, np.quantile(labels, [0.2, 0.4, 0.6, 0.8]))
        counts = np.bincount(labels).astype(float)
        weights = 1.0 / counts[labels]
        if world > 1:
            sampler = DistributedWeightedSampler(weights, world, rank, seed)
        else:
            sampler = WeightedRandomSampler(torch.as_tensor(weights), num_samples=len(weights),
                                            replacement=True, generator=torch.Generator().manual_seed(seed))
    elif world > 1:
        # pads with repeated images so every rank has as many batches (DDP steps in lockstep)
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # type: ignore[union-attr]
    return sampler


def files_fingerprint(paths: list[Path] | np.ndarray, size: int, crop: CropPlan | None = None) -> str:
    digest = hashlib.sha1(f"{size}|{crop.key() if crop is not None else 'none'}".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def decoded_cache(files: list[Path] | np.ndarray, size: int, cfg: Config, paths: Paths,
                  label: str, crop: CropPlan | None = None) -> np.ndarray | None:
    """All images decoded, cropped and resized once into a memory-mapped uint8 array, reused across
    folds, stages and runs (keyed by the files' names, sizes, mtimes, the side and the crop); None
    when off or too big."""
    need_gb = len(files) * size * size * 3 / 1e9
    if cfg.data.cache == "none" or need_gb > cfg.data.cache_max_gb:
        if cfg.data.cache == "ram":
            log.warning("data.cache: %.1f GB needed > data.cache_max_gb=%.1f; decoding every epoch",
                        need_gb, cfg.data.cache_max_gb)
        if crop is not None and crop.mode == "faces":
            log.warning("data.crop=faces without the decoded cache: faces are searched again in every "
                        "epoch; allow data.cache (raise data.cache_max_gb) to search them once")
        return None
    target = paths.decoded_cache_npy(label, size, files_fingerprint(files, size, crop))
    if not target.is_file():
        with atomic_path(target) as tmp:
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                              shape=(len(files), size, size, 3))
            _reserve(tmp)
            # Pillow, OpenCV and the face cascades release the GIL: threads decode in parallel.
            with ThreadPoolExecutor(max(1, min(8, available_cpus()))) as pool:
                decoded = pool.map(lambda path: read_resized(path, size, crop), files)
                for i, image in enumerate(tqdm(decoded, total=len(files), desc=f"decode {label}",
                                               unit="img", leave=False, mininterval=1.0)):
                    array[i] = image
            array.flush()
            del array
    return np.load(target, mmap_mode="r")


def _reserve(path: Path) -> None:
    """Allocate the memory-mapped file's blocks now: on a full disk this fails with an OSError (one
    error line, the temp file removed) instead of a SIGBUS in the middle of filling the map."""
    if hasattr(os, "posix_fallocate"):
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # file systems without fallocate
                raise
        finally:
            os.close(fd)


def table_images(frame: pd.DataFrame, size: int, cfg: Config, paths: Paths, label: str,
                 crop: CropPlan | None = None) -> np.ndarray | None:
    """``decoded_cache`` of a competition table's ``path`` column."""
    return decoded_cache(frame["path"].to_numpy(), size, cfg, paths, label, crop)
