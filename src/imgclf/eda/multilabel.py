"""The multi-label part of the EDA: labels per image, label co-occurrence, rare labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from imgclf.data.competition import Competition
from imgclf.reporting.figures import plt, save_figure
from imgclf.reporting.markdown import markdown_table

RARE_SHARE = 0.02  # a label on fewer than 2 % of the images (or fewer than n_splits) is flagged rare


def multilabel_summary(comp: Competition, n_splits: int) -> dict:
    """Label frequencies, the labels-per-image histogram, the co-occurrence matrix and rare labels."""
    y = comp.labels.astype(int)
    counts = y.sum(axis=0)
    per_image = np.bincount(y.sum(axis=1))
    rare = [name for name, c in zip(comp.classes, counts, strict=True)
            if c < max(n_splits, RARE_SHARE * len(y))]
    return {"labels": dict(zip(comp.classes, counts.tolist(), strict=True)),
            "labels_per_image": {int(k): int(v) for k, v in enumerate(per_image) if v},
            "mean_labels_per_image": float(y.sum(axis=1).mean()),
            "co_occurrence": (y.T @ y).tolist(), "rare_labels": rare}


def plot_multilabel(comp: Competition, summary: dict, out: Callable[[str], Path]) -> dict[str, str]:
    figures = {"labels_per_image": "labels_per_image.png", "co_occurrence": "label_co_occurrence.png"}
    fig, ax = plt.subplots(figsize=(5, 3))
    hist = summary["labels_per_image"]
    ax.bar(list(hist), list(hist.values()), color="tab:blue")
    ax.set(xlabel="labels per image", ylabel="train images", title="labels per image")
    save_figure(fig, out(figures["labels_per_image"]))
    matrix = np.array(summary["co_occurrence"])
    n = len(comp.classes)
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * n + 2), max(3.5, 0.35 * n + 1.5)))
    image = ax.imshow(matrix, cmap="viridis")
    fig.colorbar(image, ax=ax, label="images with both labels")
    if n <= 40:  # beyond that the names are unreadable; the counts are in summary.json
        ax.set(xticks=range(n), yticks=range(n), xticklabels=comp.classes, yticklabels=comp.classes)
        plt.setp(ax.get_xticklabels(), rotation=90)
    ax.set(title="label co-occurrence (diagonal: label counts)")
    fig.tight_layout()
    save_figure(fig, out(figures["co_occurrence"]))
    return figures


def multilabel_section(summary: dict, figures: dict[str, str]) -> list[str]:
    hist = ", ".join(f"{k}: {v}" for k, v in summary["labels_per_image"].items())
    mean = summary["mean_labels_per_image"]
    out = ["## Multi-label", "", f"Labels per image: {hist} (mean {mean:.2f}).", ""]
    rows = [[name, count, "RARE" if name in summary["rare_labels"] else ""]
            for name, count in summary["labels"].items()]
    out += markdown_table(["label", "images", "flag"], rows)
    for key in ("labels_per_image", "co_occurrence"):
        out += [f"![{key}]({figures[key]})", ""]
    return out
