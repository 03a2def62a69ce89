"""Error analysis of multi-label OOF probabilities: the images with the largest summed binary
cross-entropy, precision/recall/F1/support per label, and one reliability diagram over every
(image, label) probability. The same files as the single-label analysis (``errors.FILES``), so the
report shows either without knowing which it is.

Labels count as predicted at ``threshold`` (0.5 unless the caller passes the fitted thresholds):
the analysis is about where the probabilities are wrong, not about the submission's cut-off.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from imgclf.atomic import write_csv, write_text
from imgclf.reporting.errors import EPS, plot_calibration, plot_top_losses


def per_row_bce(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Each row's binary cross-entropy summed over its labels (clipped like sklearn's log_loss)."""
    p = np.clip(probs, EPS, 1 - EPS)
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p)).sum(axis=1)


def _names(row: np.ndarray, classes: Sequence[str]) -> str:
    return " ".join(c for c, on in zip(classes, row, strict=True) if on) or "(none)"


def per_label_table(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    p, r, f, s = precision_recall_fscore_support(labels, predicted, average=None, zero_division=0)
    return pd.DataFrame({"class": list(classes), "precision": p, "recall": r, "f1": f, "support": s})


def label_confusions(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str],
                     k: int = 10) -> pd.DataFrame:
    """The labels most often missed (true, not predicted) or added (predicted, not true), most first."""
    rows = [{"true": c, "predicted": "(missed)", "count": int(n)}
            for c, n in zip(classes, (labels & ~predicted).sum(0), strict=True) if n]
    rows += [{"true": "(absent)", "predicted": c, "count": int(n)}
             for c, n in zip(classes, (~labels & predicted).sum(0), strict=True) if n]
    rows.sort(key=lambda r: -r["count"])
    return pd.DataFrame(rows[:k], columns=["true", "predicted", "count"])


def write_multilabel_error_analysis(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                                    ids: Sequence[str], image_paths: Sequence[str | Path], out_dir: Path,
                                    k: int = 16, threshold: float | np.ndarray = 0.5) -> dict:
    """Every error-analysis file under ``out_dir``; returns summary.json's content."""
    labels = np.asarray(labels).astype(bool)
    predicted = probs >= np.asarray(threshold)
    loss = per_row_bce(labels, probs)
    top = np.argsort(-loss, kind="stable")[:k]
    worst = [int(np.argmax(np.abs(labels[i] - probs[i]))) for i in top]  # the label most wrong in the row
    frame = pd.DataFrame({
        "id": np.asarray(ids, dtype=str)[top], "path": [str(image_paths[i]) for i in top],
        "true": [_names(labels[i], classes) for i in top],
        "predicted": [_names(predicted[i], classes) for i in top],
        "worst_label": [classes[j] for j in worst],
        "prob_predicted": [probs[i, j] for i, j in zip(top, worst, strict=True)], "loss": loss[top],
    })
    write_csv(out_dir / "top_losses.csv", frame)
    plot_top_losses(frame, out_dir / "top_losses.png", prob_label="p(worst label)")
    write_csv(out_dir / "confused_pairs.csv", label_confusions(labels, predicted, classes))
    write_csv(out_dir / "per_class.csv", per_label_table(labels, predicted, classes))
    ece = plot_calibration(labels.ravel().astype(int), probs.ravel(), out_dir / "reliability.png",
                           "probability (every label)")
    summary = {"n": int(len(labels)), "ece": ece, "mean_loss": float(loss.mean()),
               "accuracy": float((predicted == labels).all(axis=1).mean()), "task": "multi_label",
               "accuracy_note": "exact match of every label"}
    write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    return summary
