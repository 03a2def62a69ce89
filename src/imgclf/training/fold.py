"""One fold's training state: model, optimiser, schedule, loss, hooks and datasets, built from the
config; ``FoldRun.state()`` is what last.pt stores and ``restore()`` resumes from."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch import nn

from imgclf.config.schema import Config
from imgclf.data.boxes import competition_crop
from imgclf.data.competition import Competition
from imgclf.data.extra import load_extra_train
from imgclf.errors import ConfigError
from imgclf.metrics import get_metric
from imgclf.models.backbone import norm_stats
from imgclf.models.factory import build_loss, build_model
from imgclf.models.ordinal import output_width
from imgclf.paths import Paths
from imgclf.training.checkpoint import (
    evaluated_weights,
    read_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from imgclf.training.dataset import ImageDataset, decoded_cache, epoch_rows, table_images, train_batches
from imgclf.training.distributed import (
    DistInfo,
    device_for,
    dist_info,
    main_first,
)
from imgclf.training.engine import (
    Runtime,
    StepHooks,
    make_runtime,
    pick_device,
)
from imgclf.training.mixing import make_mixer
from imgclf.training.optim import LRSchedule, build_optimizer
from imgclf.training.student import ExtraRows, StudentFold, combine, sampler_labels
from imgclf.training.tracking import Tracker
from imgclf.training.transforms import train_transform

log = logging.getLogger(__name__)


@dataclass
class FoldRun:
    """Everything one fold's training holds; ``state()`` is what last.pt stores."""

    cfg: Config
    comp: Competition
    fold: int
    fold_dir: Path
    rt: Runtime
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    loss_fn: nn.Module
    hooks: StepHooks
    tracker: Tracker
    train_ds: ImageDataset
    valid_ds: ImageDataset
    valid_ids: np.ndarray
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    net: nn.Module | None = None  # what the training loop calls: torch.compile / DDP wrapper, or model itself
    dist: DistInfo = field(default_factory=DistInfo)  # this process's rank under torchrun

    def eval_model(self) -> nn.Module:
        return self.hooks.ema.module if self.hooks.ema is not None else self.model

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "ema": self.hooks.ema.state_dict() if self.hooks.ema is not None else None,
            "scaler": self.rt.scaler.state_dict() if self.rt.scaler is not None else None,
            "updates": self.hooks.updates, "epoch": self.epoch, "history": self.history,
            "tracker": [self.tracker.best, self.tracker.best_epoch, self.tracker.bad_epochs,
                        self.tracker.best_loss],
            "rng": rng_state(), "classes": self.comp.classes, "config": self.cfg.to_dict(),
            **self.normalisation(),
        }

    def normalisation(self) -> dict:
        """The input mean/std (0..1) the model was trained with: every checkpoint stores them, so that
        inference from it alone normalises alike."""
        return {"mean": self.rt.mean.flatten().cpu() / 255, "std": self.rt.std.flatten().cpu() / 255}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.hooks.ema is not None and state["ema"] is not None:
            self.hooks.ema.load_state_dict(state["ema"])
        if self.rt.scaler is not None and state["scaler"] is not None:
            self.rt.scaler.load_state_dict(state["scaler"])
        self.hooks.updates, self.epoch, self.history = state["updates"], state["epoch"], state["history"]
        tracked = list(state["tracker"]) + [None] * (4 - len(state["tracker"]))  # older last.pt: 3 fields
        self.tracker.best, self.tracker.best_epoch, self.tracker.bad_epochs, self.tracker.best_loss = tracked
        set_rng_state(state["rng"])


def build_fold_run(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, fold: int,
                   fold_dir: Path, student: StudentFold | None = None) -> FoldRun:
    """Everything fold ``fold`` trains with, in a fixed order (seeded first, so that a rerun, and a
    resumed run, draws the same initial weights). ``student``: the pseudo-label stage's rows and
    loss for this fold (made from this fold's teacher models only)."""
    if student is not None and student.fold != fold:  # the no-leak rule, checked where it is used
        raise ValueError(f"fold {fold} was handed the targets of fold {student.fold}'s teacher")
    seed_everything(cfg.seed + 1000 * fold, cfg.train.deterministic)
    info = dist_info()
    device = device_for(info, pick_device(cfg))
    model, rt = _model_and_runtime(cfg, comp, device, info)
    if student is not None and student.init_weights is not None:  # before the EMA copies the model
        model.load_state_dict(evaluated_weights(read_checkpoint(student.init_weights, comp)))
    tr, va = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    # Training targets may differ from the scored labels (mask layout: data.mask_train_old_age_threshold).
    labels = comp.labels
    fit_labels = comp.train["train_label"].to_numpy() if "train_label" in comp.train else labels
    train_ds, valid_ds = _datasets(cfg, paths, comp, (tr, fit_labels[tr]), (va, labels[va]), info, student)
    soft = train_ds.labels.ndim == 2 and not comp.multi_label
    tc = cfg.train
    batches = train_batches(epoch_rows(train_ds, cfg), tc.batch_size, info.world)
    updates_per_epoch = -(-batches // tc.accum_steps)
    optimizer = build_optimizer(model, tc)
    metric = get_metric(cfg.metric, comp.task)
    schedule = LRSchedule(optimizer, tc, updates_per_epoch, metric.greater_is_better)
    hooks = StepHooks(after_update=schedule.after_update, clip_grad=tc.clip_grad, accum_steps=tc.accum_steps,
                      ema=ModelEmaV3(model, decay=ema_decay(tc.ema_decay, updates_per_epoch * tc.epochs),
                                     use_warmup=True) if tc.ema else None,
                      mix=None if soft else make_mixer(cfg, comp))  # mixup mixes class indices only
    if student is not None and student.loss is not None:
        loss_fn = student.loss.to(device)
    elif comp.continuous:
        loss_fn = build_loss(cfg, np.zeros(0), comp=comp).to(device)
    elif comp.multi_label:  # positives per label
        loss_fn = build_loss(cfg, fit_labels[tr].sum(axis=0), n_rows=len(tr)).to(device)
    else:
        counts = np.bincount(sampler_labels(train_ds.labels, comp.num_classes), minlength=comp.num_classes)
        loss_fn = build_loss(cfg, counts).to(device)
    return FoldRun(cfg=cfg, comp=comp, fold=fold, fold_dir=fold_dir, rt=rt, model=model,
                   net=_wrapped(model, cfg, device, info), dist=info, optimizer=optimizer, schedule=schedule,
                   loss_fn=loss_fn, hooks=hooks, tracker=Tracker(metric.greater_is_better),
                   train_ds=train_ds, valid_ds=valid_ds, valid_ids=comp.train["id"].to_numpy()[va])


def ema_decay(configured: float, updates: int) -> float:
    """The weight average's decay for a fold of ``updates`` optimiser updates: ``train.ema_decay``, but
    at most 1 - 10 / updates, so that the average spans at most a tenth of the run. 0.998 averages
    ~500 updates: in a run of 30 it would still hold the first, barely trained, weights."""
    return min(configured, max(0.0, 1 - 10 / max(updates, 1)))


def _model_and_runtime(cfg: Config, comp: Competition, device: torch.device,
                       info: DistInfo) -> tuple[nn.Module, Runtime]:
    model = build_model(cfg, output_width(cfg, comp)).to(device)
    if cfg.train.sync_bn and info.enabled:
        if device.type != "cuda":
            raise ConfigError("train.sync_bn: SyncBatchNorm needs CUDA (DDP on CPU runs on gloo); "
                              "set train.sync_bn=false")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    rt = make_runtime(cfg, device, *norm_stats(model))
    if not info.is_main:
        rt.progress = False  # one set of progress bars: rank 0's
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, rt


def _datasets(cfg: Config, paths: Paths, comp: Competition, train: tuple[np.ndarray, np.ndarray],
              valid: tuple[np.ndarray, np.ndarray], info: DistInfo,
              student: StudentFold | None = None) -> tuple[ImageDataset, ImageDataset]:
    """The fold's training and validation images (rows, labels), from the decoded cache when on;
    training also gets ``data.extra_train`` and the student's rows, validation never does."""
    size, crop = cfg.data.image_size, competition_crop(cfg.data, comp)
    images = main_first(lambda: table_images(comp.train, size, cfg, paths, "train", crop), info)
    files = comp.train["path"].to_numpy()
    (tr, train_labels), (va, valid_labels) = train, valid
    if student is not None and student.train_targets is not None:
        train_labels = student.train_targets
    parts = [ExtraRows(files[tr], train_labels, None if images is None else images[tr])]
    extra = load_extra_train(cfg, comp)
    if extra is not None:
        extra_files = extra["path"].to_numpy()
        cached = main_first(lambda: decoded_cache(extra_files, size, cfg, paths, "extra", crop), info)
        parts.append(ExtraRows(extra_files, extra["label"].to_numpy(), cached))
    if student is not None and student.extra is not None:
        parts.append(student.extra)
    rows = combine(parts, comp.num_classes) if len(parts) > 1 else parts[0]
    pseudo = 0 if student is None or student.extra is None else len(student.extra.files)
    pseudo_from = len(rows.files) - pseudo if pseudo else None
    train_ds = ImageDataset(rows.files, rows.targets, size, train_transform(cfg.augment, size), rows.images,
                            crop, pseudo_from)
    valid_ds = ImageDataset(files[va], valid_labels, size, None, None if images is None else images[va], crop)
    return train_ds, valid_ds


def _wrapped(model: nn.Module, cfg: Config, device: torch.device, info: DistInfo) -> nn.Module:
    """What the training loop calls: DDP under torchrun, compiled when asked. The wrappers share the
    parameters; checkpoints and the EMA keep the plain ``model``."""
    net = model
    if info.enabled:
        # a frozen backbone gets no gradients: DDP must then look for unused parameters every step
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.train.freeze_backbone_epochs > 0)
    return torch.compile(net) if cfg.train.compile else net
