"""Plots of ordinal and regression predictions: the grade confusion matrix, predicted against true,
and the target's histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from imgclf.reporting.figures import plt, save_figure


def plot_grade_confusion(labels: np.ndarray, grades: np.ndarray, names: list[str], target: Path,
                         title: str = "OOF grade confusion matrix") -> None:
    n = len(names)
    cm = confusion_matrix(np.asarray(labels, dtype=int), np.asarray(grades, dtype=int), labels=np.arange(n))
    fig, ax = plt.subplots(figsize=(3 + 0.5 * n, 3 + 0.5 * n))
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=names, yticklabels=names,
           xlabel="predicted grade", ylabel="true grade", title=title)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    save_figure(fig, target)


def plot_predicted_vs_true(labels: np.ndarray, values: np.ndarray, target: Path,
                           title: str = "OOF predicted vs true") -> None:
    y = np.asarray(labels, dtype=float)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y, values, s=8, alpha=0.5)
    low, high = float(min(y.min(), np.min(values))), float(max(y.max(), np.max(values)))
    ax.plot([low, high], [low, high], color="tab:red", lw=1, label="y = x")
    ax.set(xlabel="true", ylabel="predicted", title=title)
    ax.legend(loc="upper left")
    save_figure(fig, target)


def plot_continuous_oof(task: str, names: list[str], labels: np.ndarray, values: np.ndarray,
                        target: Path) -> None:
    """Ordinal: the confusion matrix of the rounded grades; regression: predicted against true."""
    if task == "ordinal":
        grades = np.clip(np.rint(values), 0, len(names) - 1).astype(int)
        plot_grade_confusion(labels, grades, names, target, "OOF grade confusion (rounded predictions)")
    else:
        plot_predicted_vs_true(labels, values, target)


def plot_target_histogram(task: str, names: list[str], labels: np.ndarray, target: Path) -> None:
    """Ordinal: images per grade; regression: the histogram of the values."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if task == "ordinal":
        counts = np.bincount(np.asarray(labels, dtype=int), minlength=len(names))
        ax.bar(range(len(names)), counts, color="tab:blue")
        ax.set(xticks=range(len(names)), xticklabels=names, xlabel="grade", ylabel="images",
               title="train images per grade")
    else:
        ax.hist(np.asarray(labels, dtype=float), bins=30, color="tab:blue")
        ax.set(xlabel="target", ylabel="images", title="train target histogram")
    save_figure(fig, target)
