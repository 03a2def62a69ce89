"""Error analysis from out-of-fold probabilities: the highest-loss images, the most-confused class
pairs, per-class precision/recall/F1 and a reliability diagram with its ECE.

Everything is written under one folder (``Paths.errors_dir`` or ``Paths.ensemble_errors_dir``) so
that the HTML report can show it without knowing how it was computed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from imgclf.atomic import write_csv, write_text
from imgclf.reporting.figures import plt, save_figure

EPS = 1e-15  # log loss clipping, as sklearn's log_loss does
THUMB = 64  # px: the grid shows thumbnails, never the originals
FILES = ("top_losses.png", "reliability.png", "top_losses.csv", "confused_pairs.csv", "per_class.csv",
         "summary.json")


def per_row_loss(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Each row's cross-entropy: -log p(true class), clipped like sklearn's log_loss."""
    p = probs[np.arange(len(labels)), labels]
    return -np.log(np.clip(p, EPS, 1.0))


def top_losses(labels: np.ndarray, probs: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the ``k`` largest losses, largest first (ties: earlier row first)."""
    return np.argsort(-per_row_loss(labels, probs), kind="stable")[:k]


def confused_pairs(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                   k: int = 10) -> pd.DataFrame:
    """The off-diagonal confusion-matrix cells with the most rows, most first."""
    cm = confusion_matrix(labels, probs.argmax(axis=1), labels=np.arange(len(classes)))
    np.fill_diagonal(cm, 0)
    cells = [(cm[i, j], i, j) for i, j in zip(*np.nonzero(cm), strict=True)]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return pd.DataFrame([{"true": classes[i], "predicted": classes[j], "count": int(n)}
                         for n, i, j in cells[:k]], columns=["true", "predicted", "count"])


def per_class_table(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    p, r, f, s = precision_recall_fscore_support(labels, probs.argmax(axis=1), labels=np.arange(len(classes)),
                                                 zero_division=0)
    return pd.DataFrame({"class": list(classes), "precision": p, "recall": r, "f1": f, "support": s})


def calibration_error(outcome: np.ndarray, conf: np.ndarray, n_bins: int = 10) -> float:
    """ECE of probabilities ``conf`` for 0/1 ``outcome``: the support-weighted gap between the rate of
    outcomes and the mean probability over equal-width bins."""
    outcome, conf = np.asarray(outcome, dtype=float), np.asarray(conf, dtype=float)
    bins = np.clip(np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True), 0, n_bins - 1)
    gaps = [abs(outcome[bins == b].mean() - conf[bins == b].mean()) * (bins == b).sum()
            for b in range(n_bins) if (bins == b).any()]
    return float(sum(gaps) / len(outcome))


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE: the support-weighted gap between accuracy and confidence over equal-width bins."""
    return calibration_error(probs.argmax(axis=1) == labels, probs.max(axis=1), n_bins)


def plot_calibration(outcome: np.ndarray, conf: np.ndarray, target: Path, xlabel: str,
                     n_bins: int = 10) -> float:
    """The reliability diagram of ``conf`` against 0/1 ``outcome``; returns its ECE."""
    ece = calibration_error(outcome, conf, n_bins)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "--", color="tab:gray", label="perfect")
    if len(np.unique(outcome)) > 1:  # calibration_curve needs both outcomes
        rate, mean_conf = calibration_curve(outcome, conf, n_bins=n_bins, strategy="uniform")
        ax.plot(mean_conf, rate, "o-", color="tab:blue", label="model")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=xlabel, ylabel="observed frequency",
           title=f"reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    save_figure(fig, target)
    return ece


def plot_reliability(labels: np.ndarray, probs: np.ndarray, target: Path, n_bins: int = 10) -> float:
    correct = (probs.argmax(axis=1) == labels).astype(int)
    return plot_calibration(correct, probs.max(axis=1), target, "confidence (top class)", n_bins)


def thumbnail(path: str | Path) -> np.ndarray:
    """A small RGB copy of the image (grey where it cannot be read: the grid still draws)."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((THUMB, THUMB))
            return np.asarray(im)
    except (OSError, ValueError):
        return np.full((THUMB, THUMB, 3), 128, dtype=np.uint8)


def plot_top_losses(frame: pd.DataFrame, target: Path, prob_label: str = "p") -> None:
    """A grid of the rows of ``top_losses.csv``: thumbnail, true label, prediction, probability."""
    n, cols = len(frame), 4
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.1, rows * 2.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), frame.itertuples(), strict=False):
        ax.imshow(thumbnail(row.path))
        ax.set_title(f"{row.id}\ntrue {row.true} / pred {row.predicted}\n"
                     f"{prob_label}={row.prob_predicted:.2f} "
                     f"loss {row.loss:.2f}", fontsize=7)
    fig.suptitle("highest OOF losses", fontsize=9)
    save_figure(fig, target)


def write_error_analysis(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], ids: Sequence[str],
                         image_paths: Sequence[str | Path], out_dir: Path, k: int = 16) -> dict:
    """Every error-analysis file under ``out_dir`` (see ``FILES``); returns summary.json's content."""
    labels = np.asarray(labels, dtype=int)
    loss, pred = per_row_loss(labels, probs), probs.argmax(axis=1)
    top = top_losses(labels, probs, k)
    frame = pd.DataFrame({
        "id": np.asarray(ids, dtype=str)[top], "path": [str(image_paths[i]) for i in top],
        "true": [classes[labels[i]] for i in top], "predicted": [classes[pred[i]] for i in top],
        "prob_true": probs[top, labels[top]], "prob_predicted": probs[top, pred[top]], "loss": loss[top],
    })
    write_csv(out_dir / "top_losses.csv", frame)
    plot_top_losses(frame, out_dir / "top_losses.png")
    write_csv(out_dir / "confused_pairs.csv", confused_pairs(labels, probs, classes))
    write_csv(out_dir / "per_class.csv", per_class_table(labels, probs, classes))
    ece = plot_reliability(labels, probs, out_dir / "reliability.png")
    summary = {"n": int(len(labels)), "ece": ece, "mean_loss": float(loss.mean()),
               "accuracy": float((pred == labels).mean())}
    write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    return summary
