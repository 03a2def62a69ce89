"""What each epoch leaves behind: history.csv, TensorBoard scalars, the terminal line, learning curves."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.atomic import write_csv
from imgclf.reporting.figures import plot_learning_curves
from imgclf.training.fold import FoldRun

log = logging.getLogger(__name__)


def write_history(run: FoldRun, target: Path) -> None:
    write_csv(target, pd.DataFrame(run.history))


def plot_curves(run: FoldRun, target: Path) -> None:
    plot_learning_curves(pd.DataFrame(run.history), run.cfg.metric, target)


def open_tensorboard(log_dir: Path) -> object | None:
    """A SummaryWriter for the fold, or None when tensorboard is not installed."""
    try:
        # an optional package: a trimmed install (requirements.txt has it) still trains
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_dir))


def log_epoch(run: FoldRun, row: dict, improved: bool, writer) -> None:
    metric = run.cfg.metric
    log.info("fold %d epoch %d/%d  lr %.2e  train_loss %.4f  val_loss %.4f  %s %.4f%s  (%.0f img/s)",
             run.fold, row["epoch"], run.cfg.train.epochs, row["lr"], row["train_loss"], row["val_loss"],
             metric, row["score"], "  *best*" if improved else "", row["images_per_s"])
    if writer is not None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, float) and np.isfinite(value):
                writer.add_scalar(key, value, row["epoch"])
        writer.flush()
