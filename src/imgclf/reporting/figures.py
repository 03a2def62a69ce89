"""Plots people would rather see than read: learning curves, confusion matrix, per-class F1."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import confusion_matrix, f1_score  # noqa: E402

from imgclf.atomic import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, target: Path) -> None:
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_learning_curves(history: pd.DataFrame, metric: str, target: Path) -> None:
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(history["epoch"], history["train_loss"], label="train")
    ax_loss.plot(history["epoch"], history["val_loss"], label="valid")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    ax_metric.plot(history["epoch"], history["score"], color="tab:green")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    save_figure(fig, target)


def plot_oof(labels: np.ndarray, probs: np.ndarray, classes: list[str], confusion_png: Path,
             f1_png: Path) -> None:
    """The OOF confusion matrix and the per-class F1 bars."""
    pred = probs.argmax(axis=1)
    n = len(classes)
    cm = confusion_matrix(labels, pred, labels=np.arange(n))
    side = min(14, 3 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title="OOF confusion matrix")
    plt.setp(ax.get_xticklabels(), rotation=90)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    save_figure(fig, confusion_png)
    f1 = f1_score(labels, pred, labels=np.arange(n), average=None, zero_division=0)
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * n + 2), 3.5))
    ax.bar(range(n), f1, color="tab:blue")
    ax.set(xticks=range(n), xticklabels=classes, ylim=(0, 1), ylabel="F1", title="OOF F1 per class")
    plt.setp(ax.get_xticklabels(), rotation=90)
    save_figure(fig, f1_png)


def plot_method_scores(table: pd.DataFrame, metric: str, target: Path) -> None:
    """Horizontal bars of every single model's and method's OOF score, zoomed on their range."""
    values = table[metric].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(table) + 1.2))
    ax.barh(range(len(table)), values, color=["tab:gray" if m.startswith("model:") else "tab:blue"
                                              for m in table["method"]])
    ax.set(yticks=range(len(table)), yticklabels=table["method"], xlabel=f"OOF {metric}",
           title="single models (grey) and ensemble methods")
    finite = values[np.isfinite(values)]
    if finite.size:
        span = max(finite.max() - finite.min(), 1e-3)
        ax.set_xlim(finite.min() - span, finite.max() + 0.5 * span)
    ax.invert_yaxis()
    save_figure(fig, target)


def plot_lr_find(lrs: np.ndarray, losses: np.ndarray, suggestion: float, configured: float,
                 target: Path) -> None:
    """Smoothed training loss against the learning rate (log scale), the suggestion and train.lr marked."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(lrs, losses, color="tab:blue")
    ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested {suggestion:.2g}")
    ax.axvline(configured, color="tab:gray", linestyle=":", label=f"train.lr {configured:.2g}")
    ax.set_xscale("log")
    if len(losses):
        low = float(np.min(losses))
        ax.set_ylim(low - 0.1 * abs(low), min(float(np.max(losses)), 4 * low + 1e-9) * 1.05)
    ax.set(xlabel="learning rate", ylabel="smoothed training loss", title="LR range test (fold 0)")
    ax.legend()
    save_figure(fig, target)
