"""The EDA's figures (matplotlib, Agg backend), each written atomically as a PNG."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.data.competition import Competition
from imgclf.eda.analysis import readable
from imgclf.reporting.figures import plt, save_figure

COLOURS = {"train": "tab:blue", "test": "tab:orange"}


def plot_class_counts(counts: dict[str, int], ratio: float, target: Path) -> None:
    names, values = list(counts), list(counts.values())
    many = len(names) > 40
    fig, ax = plt.subplots(figsize=(min(16, max(5, 0.35 * len(names) + 2)), 3.8))
    ax.bar(range(len(names)), values, color="tab:blue")
    ax.set(ylabel="train images", title=f"class counts (imbalance max/min {ratio:.2f}:1)")
    if many:  # unreadable tick labels help nobody; the table in report.md names every class
        ax.set(xlabel=f"{len(names)} classes (in class order)", xticks=[])
    else:
        ax.set(xticks=range(len(names)), xticklabels=names)
        plt.setp(ax.get_xticklabels(), rotation=90 if max(map(len, names)) > 3 else 0)
    save_figure(fig, target)


def _bars(ax, table: dict[str, dict], title: str) -> None:
    """Grouped bars: one group per category, one bar per split."""
    categories = sorted({str(k) for counts in table.values() for k in counts})
    width = 0.8 / max(1, len(table))
    for i, (split, counts) in enumerate(table.items()):
        values = [{str(k): v for k, v in counts.items()}.get(c, 0) for c in categories]
        ax.bar(np.arange(len(categories)) + i * width, values, width, label=split, color=COLOURS.get(split))
    ax.set(xticks=np.arange(len(categories)) + width * (len(table) - 1) / 2, xticklabels=categories,
           title=title, ylabel="files")
    ax.legend(fontsize=8)


def plot_formats(summary: dict, target: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, key, title in zip(axes, ("content_types", "channels", "dtypes"),
                              ("file type (by content)", "channels", "bit depth"), strict=True):
        _bars(ax, {split: summary[split][key] for split in ("train", "test")}, title)
    fig.tight_layout()
    save_figure(fig, target)


def _hist(ax, ok: pd.DataFrame, column: str, title: str) -> None:
    values = ok[column].to_numpy(float)
    edges = np.histogram_bin_edges(values, bins=30) if np.ptp(values) > 0 else \
        np.array([values.min() - 0.5, values.min() + 0.5])
    for split, part in ok.groupby("split", sort=False):
        ax.hist(part[column], bins=edges, density=True, histtype="step", linewidth=1.6,
                label=f"{split} (n={len(part)})", color=COLOURS.get(split))
    ax.set(title=title, ylabel="density")
    ax.legend(fontsize=8)


def plot_sizes(files: pd.DataFrame, target: Path) -> None:
    ok = readable(files)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, column, title in zip(axes, ("width", "height", "aspect"),
                                 ("width (px)", "height (px)", "aspect ratio (w/h)"), strict=True):
        if len(ok):
            _hist(ax, ok, column, title)
    fig.tight_layout()
    save_figure(fig, target)


def plot_shift(files: pd.DataFrame, shift: list[dict], target: Path) -> None:
    """Train vs test ECDFs: where the curves part, the distributions differ (KS = largest gap)."""
    ok = readable(files)
    fig, axes = plt.subplots(1, max(1, len(shift)), figsize=(3.6 * max(1, len(shift)), 3.3), squeeze=False)
    for ax, row in zip(axes[0], shift, strict=False):
        for split, part in ok.groupby("split", sort=False):
            values = np.sort(part[row["column"]].to_numpy(float))
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=split,
                    color=COLOURS.get(split))
        flag = " SHIFT" if row["shifted"] else ""
        ax.set(title=f"{row['property']}\nKS {row['ks']:.3f}{flag}")
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("ECDF")
    fig.tight_layout()
    save_figure(fig, target)


def plot_channels(stats: dict[str, dict], target: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, (split, values) in enumerate(stats.items()):
        ax.bar(np.arange(3) + i * 0.4, values["mean"], 0.4, yerr=values["std"], capsize=3, label=split,
               color=COLOURS.get(split))
    ax.set(xticks=np.arange(3) + 0.2, xticklabels=["R", "G", "B"], ylim=(0, 1.05),
           title="per-channel mean ± std (0-1)")
    ax.legend(fontsize=8)
    save_figure(fig, target)


def plot_sample_grid(comp: Competition, picks: dict[int, list[str]], thumbs: dict[str, np.ndarray],
                     target: Path) -> None:
    rows, cols = max(1, len(picks)), max(1, max((len(v) for v in picks.values()), default=1))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols + 1, 1.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, (index, ids) in enumerate(picks.items()):
        axes[r, 0].set_title(comp.classes[index], fontsize=8, loc="left")
        for c, image_id in enumerate(ids):
            if image_id in thumbs:  # a corrupt pick stays blank
                axes[r, c].imshow(thumbs[image_id], cmap="gray")
    fig.suptitle("random train images per class (rows)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, target)


def plot_groups(comp: Competition, target: Path) -> None:
    per_group = comp.train.groupby("group").size()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(per_group, bins=min(30, max(1, per_group.nunique())), color="tab:purple")
    ax.set(xlabel="images per group", ylabel="groups", title=f"{len(per_group)} groups")
    save_figure(fig, target)


def plot_attributes(attributes: dict[str, dict], target: Path) -> None:
    fig, axes = plt.subplots(1, len(attributes), figsize=(3.6 * len(attributes), 3.2), squeeze=False)
    for ax, (name, counts) in zip(axes[0], attributes.items(), strict=True):
        ax.bar(range(len(counts)), list(counts.values()), color="tab:green")
        ax.set(xticks=range(len(counts)), xticklabels=list(counts), title=name, ylabel="train images")
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    fig.tight_layout()
    save_figure(fig, target)


def plot_all(comp: Competition, files: pd.DataFrame, summary: dict, picks: dict[int, list[str]],
             thumbs: dict[str, np.ndarray], out: Callable[[str], Path]) -> dict[str, str]:
    """Write every figure to ``out(file name)``; returns {topic: file name} for the report."""
    figures = {"classes": "class_counts.png", "formats": "formats.png", "sizes": "image_sizes.png",
               "channels": "channel_stats.png", "samples": "sample_grid.png"}
    plot_class_counts(summary["class_counts"], summary["imbalance_ratio"], out(figures["classes"]))
    plot_formats(summary, out(figures["formats"]))
    plot_sizes(files, out(figures["sizes"]))
    plot_channels(summary["channel_stats"], out(figures["channels"]))
    plot_sample_grid(comp, picks, thumbs, out(figures["samples"]))
    if summary["shift"]:
        figures["shift"] = "size_shift.png"
        plot_shift(files, summary["shift"], out(figures["shift"]))
    if summary["groups"]:
        figures["groups"] = "groups.png"
        plot_groups(comp, out(figures["groups"]))
    if summary["attributes"]:
        figures["attributes"] = "attributes.png"
        plot_attributes(summary["attributes"], out(figures["attributes"]))
    return figures
