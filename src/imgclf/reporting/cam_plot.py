"""The grid of class-activation maps: one row per class, its correct images then its wrong ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.reporting.figures import plt, save_figure


@dataclass
class CamCell:
    overlay: np.ndarray  # HxWx3 uint8: the image with its heatmap
    cls: str  # the row: the image's class (multi-label: the label explained)
    kind: str  # "correct" or "wrong"
    title: str


def plot_cam_grid(cells: Sequence[CamCell], classes: Sequence[str], per_kind: int, target: Path) -> None:
    """Rows = classes, columns = ``per_kind`` correct then ``per_kind`` wrong images; empty where a
    class has fewer (a class with no mistake has no wrong column to show)."""
    rows = [c for c in classes if any(cell.cls == c for cell in cells)] or list(classes[:1])
    cols = 2 * per_kind
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 1.6, len(rows) * 1.75), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, cls in enumerate(rows):
        for offset, kind in ((0, "correct"), (per_kind, "wrong")):
            mine = [cell for cell in cells if cell.cls == cls and cell.kind == kind][:per_kind]
            for j, cell in enumerate(mine):
                ax = axes[r, offset + j]
                ax.imshow(cell.overlay, interpolation="nearest")
                ax.set_title(cell.title, fontsize=6)
        axes[r, 0].text(-0.08, 0.5, cls, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    for j in range(cols):
        axes[0, j].text(0.5, 1.45, "correct" if j < per_kind else "wrong", transform=axes[0, j].transAxes,
                        ha="center", fontsize=8, weight="bold")
    fig.suptitle("Grad-CAM of OOF images (each by its own fold's model)", fontsize=9)
    save_figure(fig, target)
