"""Training of one fold: best-val and last checkpoints, exact resume, per-epoch logs, fold OOF."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from timm.data import Mixup, resolve_data_config
from timm.utils import ModelEmaV3
from torch import nn

from .atomic import write_csv
from .checkpoint import check_compatible, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import Config
from .data import Competition
from .dataset import ImageDataset, make_loader, table_images, train_batches
from .distributed import (
    DistInfo,
    device_for,
    dist_info,
    gather_rows,
    main_first,
    on_main,
    shard,
    sum_across,
    sync_module,
)
from .engine import Runtime, StepHooks, make_runtime, pick_device, predict_logits, softmax, train_one_epoch
from .errors import ConfigError
from .losses import build_loss
from .metrics import get_metric, is_better, score_all
from .models import build_model, set_backbone_frozen
from .optim import LRSchedule, build_optimizer
from .paths import Paths
from .transforms import train_transform

log = logging.getLogger(__name__)
EpochReport = Callable[[int, float], None]  # (epoch, validation score); may raise to stop (pruning)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True


def norm_stats(model: nn.Module) -> tuple[tuple, tuple]:
    """Mean/std the model was (pre)trained with, so training and TTA cannot disagree."""
    source = model if hasattr(model, "pretrained_cfg") else getattr(model, "backbone", model)
    data_cfg = resolve_data_config(model=source)
    return tuple(data_cfg["mean"]), tuple(data_cfg["std"])


@dataclass
class Tracker:
    """Best-so-far on the competition metric, shared by checkpointing, early stopping and reporting."""

    greater_is_better: bool
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, score: float, epoch: int) -> bool:
        # the first epoch always counts (even with an undefined score) so that best.pt exists
        improved = self.best is None or is_better(score, self.best, self.greater_is_better)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
        else:
            self.bad_epochs += 1
        return improved


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
            "tracker": [self.tracker.best, self.tracker.best_epoch, self.tracker.bad_epochs],
            "rng": rng_state(), "classes": self.comp.classes, "config": self.cfg.to_dict(),
        }

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.hooks.ema is not None and state["ema"] is not None:
            self.hooks.ema.load_state_dict(state["ema"])
        if self.rt.scaler is not None and state["scaler"] is not None:
            self.rt.scaler.load_state_dict(state["scaler"])
        self.hooks.updates, self.epoch, self.history = state["updates"], state["epoch"], state["history"]
        self.tracker.best, self.tracker.best_epoch, self.tracker.bad_epochs = state["tracker"]
        set_rng_state(state["rng"])


def build_fold_run(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, fold: int,
                   fold_dir: Path) -> FoldRun:
    seed_everything(cfg.seed + 1000 * fold, cfg.train.deterministic)
    size = cfg.data.image_size
    info = dist_info()
    device = device_for(info, pick_device(cfg))
    model = build_model(cfg, comp.num_classes).to(device)
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
    images = main_first(lambda: table_images(comp.train, size, cfg, paths.cache_dir, "train"), info)
    labels = comp.train["label"].to_numpy()
    # Training targets may differ from the scored labels (mask layout: data.mask_train_old_age_threshold).
    fit_labels = comp.train["train_label"].to_numpy() if "train_label" in comp.train else labels
    tr, va = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    paths_col = comp.train["path"].to_numpy()
    train_ds = ImageDataset(paths_col[tr], fit_labels[tr], size, train_transform(cfg.augment, size),
                            None if images is None else images[tr])
    valid_ds = ImageDataset(paths_col[va], labels[va], size, None, None if images is None else images[va])
    tc = cfg.train
    updates_per_epoch = -(-train_batches(len(tr), tc.batch_size, info.world) // tc.accum_steps)
    optimizer = build_optimizer(model, tc)
    metric = get_metric(cfg.metric)
    schedule = LRSchedule(optimizer, tc, updates_per_epoch, metric.greater_is_better)
    hooks = StepHooks(after_update=schedule.after_update, clip_grad=tc.clip_grad, accum_steps=tc.accum_steps,
                      ema=ModelEmaV3(model, decay=tc.ema_decay, use_warmup=True) if tc.ema else None, mix=_mixer(cfg, comp))
    # the wrappers share the parameters; checkpoints and the EMA keep the plain `model`
    # (a frozen backbone gets no gradients: DDP must then look for unused parameters every step)
    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                              find_unused_parameters=tc.freeze_backbone_epochs > 0) \
        if info.enabled else model
    net = torch.compile(net) if tc.compile else net
    return FoldRun(cfg=cfg, comp=comp, fold=fold, fold_dir=fold_dir, rt=rt, model=model, net=net, dist=info,
                   optimizer=optimizer,
                   schedule=schedule, loss_fn=build_loss(cfg, np.bincount(fit_labels[tr], minlength=comp.num_classes))
                   .to(device), hooks=hooks, tracker=Tracker(metric.greater_is_better), train_ds=train_ds,
                   valid_ds=valid_ds, valid_ids=comp.train["id"].to_numpy()[va])


def _mixer(cfg: Config, comp: Competition) -> Callable | None:
    tc = cfg.train
    if not (tc.mixup_alpha or tc.cutmix_alpha):
        return None
    mix = Mixup(mixup_alpha=tc.mixup_alpha, cutmix_alpha=tc.cutmix_alpha, prob=tc.mix_prob,
                label_smoothing=0.0, num_classes=comp.num_classes)

    def mixed(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) % 2 == 0:
            return mix(x, y)
        # timm pairs images by flipping the batch, so it needs an even count: with an odd batch
        # size mix all but the last image rather than never mixing at all
        last = nn.functional.one_hot(y[-1:], comp.num_classes).float()
        if len(x) == 1:
            return x, last
        head_x, head_y = mix(x[:-1], y[:-1])
        return torch.cat([head_x, x[-1:]]), torch.cat([head_y, last.to(head_y.dtype)])

    return mixed


def _epoch_seed(run: FoldRun) -> int:
    return (run.cfg.seed * 1_000_003 + run.fold * 10_007 + run.epoch) % 2**31


def train_epoch(run: FoldRun) -> dict:
    cfg, tc = run.cfg, run.cfg.train
    if tc.freeze_backbone_epochs:
        set_backbone_frozen(run.model, run.epoch < tc.freeze_backbone_epochs)
    loader = make_loader(run.train_ds, cfg, run.rt.device, train=True, seed=_epoch_seed(run),
                         labels_for_sampler=run.train_ds.labels, dist=run.dist, epoch=run.epoch)
    run.train_ds.reseed(_epoch_seed(run) + 7919 * run.dist.rank)  # DDP ranks augment differently
    start = time.perf_counter()
    net = run.model if run.net is None else run.net  # not `or`: a compiled module has no truth value
    train_loss = train_one_epoch(net, loader, run.loss_fn, run.optimizer, run.rt, run.hooks,
                                 desc=f"fold {run.fold} epoch {run.epoch + 1}/{tc.epochs}")
    train_time = time.perf_counter() - start
    loss_sum, n_images = sum_across([train_loss * run.hooks.epoch_images, run.hooks.epoch_images], run.dist)
    train_loss = loss_sum / max(n_images, 1)
    logits, rows = _validate(run)
    probs = softmax(logits)
    labels = run.valid_ds.labels[rows]
    val_loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
    scores = score_all(labels, probs, tuple(dict.fromkeys(("accuracy", "f1_macro", cfg.metric))))
    return {"epoch": run.epoch + 1, "lr": run.optimizer.param_groups[0]["lr"], "train_loss": train_loss,
            "val_loss": val_loss, **scores, "score": scores[cfg.metric], "time": train_time,
            "images_per_s": n_images / max(train_time, 1e-9)}


def _validate(run: FoldRun) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every validation row exactly once (no sampler padding): under DDP each rank predicts
    its share with rank 0's weights and statistics (what best.pt stores), then the shares are gathered,
    so every rank computes the same score and takes the same early-stopping decision."""
    model = run.eval_model()
    sync_module(model, run.dist)
    rows = shard(np.arange(len(run.valid_ds)), run.dist)
    logits, rows = predict_logits(model, make_loader(run.valid_ds, run.cfg, run.rt.device, train=False, rows=rows),
                                  run.rt, desc="valid")
    return gather_rows(logits, rows, run.dist)


def _write_history(run: FoldRun, paths_history: Path) -> None:
    write_csv(paths_history, pd.DataFrame(run.history))


def run_fold(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, fold: int,
             experiment: str | None = None, report: EpochReport | None = None) -> float:
    """Train ``fold`` (resuming from last.pt if present); returns the best validation score.

    Under torchrun every rank trains its share of each epoch; rank 0 alone reads last.pt (handing it
    to the others) and writes checkpoints, history, TensorBoard logs and plots.
    """
    info = dist_info()
    fold_dir = paths.fold_dir(fold, experiment)
    if info.is_main:
        fold_dir.mkdir(parents=True, exist_ok=True)
    run = build_fold_run(cfg, paths, comp, folds, fold, fold_dir)
    last, best = paths.last_ckpt(fold, experiment), paths.best_ckpt(fold, experiment)
    state = on_main(lambda: _read_checkpoint(last, comp) if last.is_file() else None, info)
    if state is not None:
        run.restore(state)
        log.info("fold %d: resuming after epoch %d from %s", fold, run.epoch, last)
        if info.is_main and run.history:  # a run killed between last.pt and history.csv left it behind
            _write_history(run, paths.history_csv(fold, experiment))
    writer = _tensorboard(fold_dir) if info.is_main else None
    try:
        while run.epoch < cfg.train.epochs and not _early_stop(run):
            row = train_epoch(run)
            improved = run.tracker.update(row["score"], run.epoch)
            run.epoch += 1
            run.history.append(row)
            run.schedule.after_epoch(run.epoch, row["score"])
            if info.is_main:
                if improved:
                    save_checkpoint(_best_state(run), best)
                save_checkpoint(run.state(), last)
                _write_history(run, paths.history_csv(fold, experiment))
            _log_epoch(run, row, improved, writer)
            if report is not None:
                report(run.epoch, row["score"])
    finally:  # also when a pruner or Ctrl-C stops the fold: flush the event file
        if writer is not None:
            writer.close()
    if run.history and info.is_main:
        from .report import plot_learning_curves

        plot_learning_curves(pd.DataFrame(run.history), cfg.metric, fold_dir / "learning_curves.png")
    return float(run.tracker.best)


def _early_stop(run: FoldRun) -> bool:
    patience = run.cfg.train.early_stopping_patience
    if patience and run.tracker.bad_epochs >= patience:
        log.info("fold %d: early stop after %d epochs without improvement", run.fold, patience)
        return True
    return False


def _best_state(run: FoldRun) -> dict:
    return {"model": run.eval_model().state_dict(), "epoch": run.epoch, "score": run.tracker.best,
            "metric": run.cfg.metric, "classes": run.comp.classes, "config": run.cfg.to_dict(),
            "mean": run.rt.mean.flatten().cpu() / 255, "std": run.rt.std.flatten().cpu() / 255}


def _tensorboard(fold_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is in requirements.txt; a trimmed install still trains
        return None
    return SummaryWriter(log_dir=str(fold_dir / "tb"))


def _log_epoch(run: FoldRun, row: dict, improved: bool, writer) -> None:
    metric = run.cfg.metric
    log.info("fold %d epoch %d/%d  lr %.2e  train_loss %.4f  val_loss %.4f  %s %.4f%s  (%.0f img/s)",
             run.fold, row["epoch"], run.cfg.train.epochs, row["lr"], row["train_loss"], row["val_loss"],
             metric, row["score"], "  *best*" if improved else "", row["images_per_s"])
    if writer is not None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, float) and np.isfinite(value):
                writer.add_scalar(key, value, row["epoch"])
        writer.flush()


def _read_checkpoint(path: Path, comp: Competition) -> dict:
    state = load_checkpoint(path)
    check_compatible(state, comp.classes, path)
    return state


def load_model_for_inference(ckpt_path: Path, comp: Competition, device: torch.device,
                             info: DistInfo | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model from a best.pt alone (its stored config), on ``device`` in eval mode; under
    DDP (``info``) rank 0 reads the file for every rank."""
    from .config import validate_config

    state = on_main(lambda: _read_checkpoint(ckpt_path, comp), info or DistInfo())
    cfg = validate_config({**state["config"], "model": {**state["config"]["model"], "pretrained": False}})
    model = build_model(cfg, comp.num_classes)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state


def predict_fold_oof(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, fold: int,
                     experiment: str | None = None, views: list[str] | None = None) -> pd.DataFrame:
    """The fold's validation probabilities from its best checkpoint, keyed by id (under DDP: every
    rank predicts its share of the rows, each row exactly once, and every rank gets them all)."""
    info = dist_info()
    device = device_for(info, pick_device(cfg))
    model, state = load_model_for_inference(paths.best_ckpt(fold, experiment), comp, device, info)
    rt = make_runtime(cfg, device, tuple(state["mean"].tolist()), tuple(state["std"].tolist()))
    if not info.is_main:
        rt.progress = False
    va = np.flatnonzero(folds == fold)
    size = cfg.data.image_size
    images = main_first(lambda: table_images(comp.train, size, cfg, paths.cache_dir, "train"), info)
    ds = ImageDataset(comp.train["path"].to_numpy()[va], comp.train["label"].to_numpy()[va], size, None,
                      None if images is None else images[va])
    loader = make_loader(ds, cfg, device, train=False, rows=shard(np.arange(len(va)), info))
    logits, rows = gather_rows(*predict_logits(model, loader, rt, views, cfg.infer.tta_merge,
                                               desc=f"oof fold {fold}"), info)
    frame = pd.DataFrame(softmax(logits), columns=comp.classes)
    frame.insert(0, "fold", fold)
    frame.insert(0, "id", comp.train["id"].to_numpy()[va][rows])
    return frame


