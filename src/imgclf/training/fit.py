"""Training one fold: the epoch loop with best-val and last checkpoints, exact resume and early stopping."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.metrics import get_metric, reported, score_all
from imgclf.models.backbone import set_backbone_frozen
from imgclf.models.ordinal import decode, head_of, target_scale, validation_loss
from imgclf.paths import Paths
from imgclf.thresholds import tuned_score
from imgclf.training.checkpoint import read_checkpoint, save_checkpoint
from imgclf.training.dataset import make_loader
from imgclf.training.distributed import dist_info, gather_rows, on_main, shard, sum_across, sync_module
from imgclf.training.engine import predict_logits, probabilities, train_one_epoch
from imgclf.training.epoch_log import log_epoch, open_tensorboard, plot_curves, write_history
from imgclf.training.fold import FoldRun, build_fold_run
from imgclf.training.student import StudentFold, sampler_labels
from imgclf.training.trackers import FoldTrackers

log = logging.getLogger(__name__)


EpochReport = Callable[[int, float], None]  # (epoch, validation score); may raise to stop (pruning)


def _epoch_seed(run: FoldRun) -> int:
    return (run.cfg.seed * 1_000_003 + run.fold * 10_007 + run.epoch) % 2**31


def train_epoch(run: FoldRun) -> dict:
    cfg, tc = run.cfg, run.cfg.train
    if tc.freeze_backbone_epochs:
        set_backbone_frozen(run.model, run.epoch < tc.freeze_backbone_epochs)
    labels = run.train_ds.labels if run.comp.multi_label else sampler_labels(run.train_ds.labels,
                                                                               run.comp.num_classes)
    loader = make_loader(run.train_ds, cfg, run.rt.device, train=True, seed=_epoch_seed(run),
                         labels_for_sampler=labels, dist=run.dist, epoch=run.epoch)
    run.train_ds.reseed(_epoch_seed(run) + 7919 * run.dist.rank)  # DDP ranks augment differently
    start = time.perf_counter()
    net = run.model if run.net is None else run.net  # not `or`: a compiled module has no truth value
    train_loss = train_one_epoch(net, loader, run.loss_fn, run.optimizer, run.rt, run.hooks,
                                 desc=f"fold {run.fold} epoch {run.epoch + 1}/{tc.epochs}")
    train_time = time.perf_counter() - start
    loss_sum, n_images = sum_across([train_loss * run.hooks.epoch_images, run.hooks.epoch_images], run.dist)
    train_loss = loss_sum / max(n_images, 1)
    logits, rows = _validate(run)
    labels = run.valid_ds.labels[rows]
    scores, val_loss = _valid_scores(run, logits, labels)
    return {"epoch": run.epoch + 1, "lr": run.optimizer.param_groups[0]["lr"], "train_loss": train_loss,
            "val_loss": val_loss, **scores, "score": scores[cfg.metric], "time": train_time,
            "images_per_s": n_images / max(train_time, 1e-9)}


def _valid_scores(run: FoldRun, logits: np.ndarray, labels: np.ndarray) -> tuple[dict[str, float], float]:
    """The epoch's validation scores and loss. Multi-label label metrics are scored at the best global
    threshold on these rows: at 0.5 a model of rare labels scores 0 for epochs while it ranks well,
    and the thresholds fitted on OOF later replace 0.5 anyway (so the epoch score picks the
    checkpoint whose probabilities threshold best)."""
    cfg, comp = run.cfg, run.comp
    if comp.continuous:  # the rounded grades (or the values) of the decoded predictions
        head, (centre, scale) = head_of(cfg, comp), target_scale(comp)
        values = decode(logits, head, centre, scale)
        names = tuple(dict.fromkeys((*reported(comp.task)[:2], cfg.metric)))
        loss = validation_loss(head, logits, labels, centre, scale)
        return score_all(labels, values, names, comp.task), loss
    probs = probabilities(logits, comp.multi_label)
    if not comp.multi_label:
        val_loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
        return score_all(labels, probs, tuple(dict.fromkeys(("accuracy", "f1_macro", cfg.metric)))), val_loss
    val_loss = float(nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(logits).double(), torch.from_numpy(labels).double(), reduction="none").sum(1).mean())
    scores = score_all(labels, probs, tuple(dict.fromkeys(("f1_samples", "roc_auc", cfg.metric))), comp.task)
    scores[cfg.metric] = tuned_score(labels, probs, get_metric(cfg.metric, comp.task))
    return scores, val_loss


def _validate(run: FoldRun) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every validation row exactly once (no sampler padding): under DDP each rank predicts
    its share with rank 0's weights and statistics (what best.pt stores), then the shares are gathered,
    so every rank computes the same score and takes the same early-stopping decision."""
    model = run.eval_model()
    sync_module(model, run.dist)
    rows = shard(np.arange(len(run.valid_ds)), run.dist)
    logits, rows = predict_logits(model,
                                  make_loader(run.valid_ds, run.cfg, run.rt.device, train=False, rows=rows),
                                  run.rt, desc="valid", multi_label=run.comp.multi_label)
    return gather_rows(logits, rows, run.dist)


def run_fold(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, fold: int,
             experiment: str | None = None, report: EpochReport | None = None,
             student: StudentFold | None = None, trackers: FoldTrackers | None = None) -> float:
    """Train ``fold`` (resuming from last.pt if present); returns the validation score of the weights
    that predictions use (``train.checkpoint``: the last epoch's, or the best epoch's).

    Under torchrun every rank trains its share of each epoch; rank 0 alone reads last.pt (handing it
    to the others) and writes checkpoints, history, TensorBoard logs and plots.
    """
    info = dist_info()
    fold_dir = paths.fold_dir(fold, experiment)
    if info.is_main:
        fold_dir.mkdir(parents=True, exist_ok=True)
    run = build_fold_run(cfg, paths, comp, folds, fold, fold_dir, student)
    last = paths.last_ckpt(fold, experiment)
    state = on_main(lambda: read_checkpoint(last, comp) if last.is_file() else None, info)
    if state is not None:
        run.restore(state)
        log.info("fold %d: resuming after epoch %d from %s", fold, run.epoch, last)
        if info.is_main and run.history:  # a run killed between last.pt and history.csv left it behind
            write_history(run, paths.history_csv(fold, experiment))
    tensorboard = info.is_main and "tensorboard" in cfg.track.backends
    writer = open_tensorboard(paths.tensorboard_dir(fold, experiment)) if tensorboard else None
    try:
        _train_epochs(run, paths, experiment, writer, report, trackers)
    except KeyboardInterrupt:
        # Ctrl-C and SIGTERM raise from a signal handler, so they can land inside the TensorBoard
        # writer's queue and leave its thread deaf to close(): a hang of up to its 120 s flush
        # interval, seen once in ~6 interrupted runs. The thread is a daemon: it ends with the process.
        writer = None
        raise
    finally:
        if writer is not None:  # also when a pruner stops the fold: flush the event file
            writer.close()
    if run.history and info.is_main:
        plot_curves(run, paths.learning_curves_png(fold, experiment))
    return kept_score(run)


def kept_score(run: FoldRun) -> float:
    """The validation score of the weights that predictions use (train.checkpoint)."""
    if run.cfg.train.checkpoint == "best" or not run.history:
        return float(run.tracker.best)
    return float(run.history[-1]["score"])


def _train_epochs(run: FoldRun, paths: Paths, experiment: str | None, writer: object | None,
                  report: EpochReport | None, trackers: FoldTrackers | None = None) -> None:
    """The remaining epochs; on rank 0 best.pt, last.pt and history.csv after the final one and
    whenever ``train.last_checkpoint_every_s`` have passed since they were written."""
    cfg, info = run.cfg, run.dist
    saves = _CheckpointWrites(run, paths, experiment)
    while run.epoch < cfg.train.epochs and not _early_stop(run):
        row = train_epoch(run)
        improved = run.tracker.update(row["score"], run.epoch, row["val_loss"])
        run.epoch += 1
        run.history.append(row)
        run.schedule.after_epoch(run.epoch, row["score"])
        if info.is_main:
            saves.after_epoch(improved, final=run.epoch >= cfg.train.epochs or _patience_spent(run))
        log_epoch(run, row, improved, writer)
        if trackers is not None:
            trackers.log_epoch(row)
        if report is not None:
            try:
                report(run.epoch, row["score"])
            except Exception:  # a pruned trial keeps the files of the epoch it stopped after
                if info.is_main:
                    saves.write()
                raise


class _CheckpointWrites:
    """best.pt, last.pt and history.csv together, at most every ``train.last_checkpoint_every_s``
    seconds and after the final epoch: last.pt (79 MB for resnet10t: weights, EMA, AdamW state) took
    0.11-0.18 s to write, a quarter of a 150-image fold's epoch. The best epoch's weights wait in
    memory (a copy: 8 ms) until then, so that the files on disk always belong to the same epoch."""

    def __init__(self, run: FoldRun, paths: Paths, experiment: str | None) -> None:
        self.run, self.every_s = run, run.cfg.train.last_checkpoint_every_s
        self.best_path = paths.best_ckpt(run.fold, experiment)
        self.last_path = paths.last_ckpt(run.fold, experiment)
        self.history_path = paths.history_csv(run.fold, experiment)
        self.best: dict | None = None
        self.written_at = time.monotonic()

    def after_epoch(self, improved: bool, final: bool) -> None:
        if improved:
            self.best = _best_state(self.run)
        if final or time.monotonic() - self.written_at >= self.every_s:
            self.write()

    def write(self) -> None:
        if self.best is not None:
            save_checkpoint(self.best, self.best_path)
            self.best = None
        save_checkpoint(self.run.state(), self.last_path)
        write_history(self.run, self.history_path)
        self.written_at = time.monotonic()


def _patience_spent(run: FoldRun) -> bool:
    patience = run.cfg.train.early_stopping_patience
    return bool(patience) and run.tracker.bad_epochs >= patience


def _early_stop(run: FoldRun) -> bool:
    if _patience_spent(run):
        log.info("fold %d: early stop after %d epochs without improvement", run.fold,
                 run.cfg.train.early_stopping_patience)
        return True
    return False


def _best_state(run: FoldRun) -> dict:
    weights = {name: tensor.detach().clone() for name, tensor in run.eval_model().state_dict().items()}
    return {"model": weights, "epoch": run.epoch, "score": run.tracker.best,
            "metric": run.cfg.metric, "classes": run.comp.classes, "config": run.cfg.to_dict(),
            **run.normalisation()}
