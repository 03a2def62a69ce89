"""Competition metrics from scikit-learn; the one place that knows each metric's direction.

Single-label metrics take class indices [n] and class probabilities [n, C]; multi-label ones take a
0/1 label matrix [n, L] and per-label probabilities [n, L]. A multi-label metric scored on labels
(``thresholded``) binarises at 0.5, so a 0/1 prediction matrix (thresholds already applied) passes
through unchanged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _sk(name: str) -> Callable:
    """``sklearn.metrics.<name>``, imported at its first call: every stage reads the config, which
    names the metrics, and most stages never score (sklearn's import is 2 s on two slow cores)."""
    def call(*args: object, **kwargs: object) -> float:
        from sklearn import metrics

        return getattr(metrics, name)(*args, **kwargs)
    call.__name__ = name
    return call


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]  # (labels, probabilities) -> score
    greater_is_better: bool = True
    needs_proba: bool = False
    thresholded: bool = False  # multi-label: scores 0/1 predictions (thresholds fitted on OOF help)
    # The same score of 0/1 predictions in plain numpy, for the threshold search's thousands of calls
    # (tests/test_metrics.py checks it against sklearn).
    fast: Callable[[np.ndarray, np.ndarray], float] | None = None

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> float:
        with warnings.catch_warnings():
            # sklearn's guess that a fold of 36 images and 24 classes is a regression: it is not
            warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
            return float(self.fn(np.asarray(labels), np.asarray(probs)))

    def better(self, new: float, old: float | None) -> bool:
        return is_better(new, old, self.greater_is_better)


def is_better(new: float, old: float | None, greater_is_better: bool) -> bool:
    """``new`` beats ``old``: an undefined score (NaN, e.g. ROC-AUC of a one-class fold) never beats
    anything, and any real score beats a missing or undefined one."""
    if old is None or np.isnan(old):
        return not np.isnan(new)
    return new > old if greater_is_better else new < old


def paired_noise(before: np.ndarray, after: np.ndarray) -> float:
    """The standard error of the change in accuracy between two predictions of the same rows: the
    square root of the rows whose predicted class changed, over the rows (McNemar's reasoning: only
    those rows can move the score, each by one row's worth)."""
    changed = int((before.argmax(axis=1) != after.argmax(axis=1)).sum())
    return math.sqrt(changed) / len(before)


def _labels(fn: Callable, **kw) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda y, p: fn(y, p.argmax(axis=1), **kw)


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Binary: AUC of the positive-class column; multi-class: one-vs-rest macro AUC over the classes
    present in ``y`` (a fold may lack a rare class; sklearn would raise instead)."""
    n = p.shape[1]
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if n == 2:
        return _sk("roc_auc_score")(y, p[:, 1])
    return float(np.mean([_sk("roc_auc_score")(y == k, p[:, k]) for k in present]))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    # clip away log(0), then renormalise: probabilities read back from CSV rarely sum to exactly 1
    q = np.clip(p.astype(np.float64), 1e-15, 1.0)
    return _sk("log_loss")(y, q / q.sum(axis=1, keepdims=True), labels=np.arange(p.shape[1]))


def _top_k(k: int) -> Callable[[np.ndarray, np.ndarray], float]:
    def score(y: np.ndarray, p: np.ndarray) -> float:
        if p.shape[1] <= k:
            return 1.0
        return _sk("top_k_accuracy_score")(y, p, k=k, labels=np.arange(p.shape[1]))
    return score


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("accuracy", _labels(_sk("accuracy_score"))),
    Metric("balanced_accuracy", _labels(_sk("balanced_accuracy_score"))),
    Metric("f1_macro", _labels(_sk("f1_score"), average="macro", zero_division=0)),
    Metric("f1_weighted", _labels(_sk("f1_score"), average="weighted", zero_division=0)),
    Metric("precision_macro", _labels(_sk("precision_score"), average="macro", zero_division=0)),
    Metric("recall_macro", _labels(_sk("recall_score"), average="macro", zero_division=0)),
    Metric("roc_auc", _roc_auc, needs_proba=True),
    Metric("log_loss", _log_loss, greater_is_better=False, needs_proba=True),
    Metric("top3_accuracy", _top_k(3), needs_proba=True),
    Metric("top5_accuracy", _top_k(5), needs_proba=True),
]}

REPORTED = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc", "log_loss", "top3_accuracy")


def _binary(p: np.ndarray) -> np.ndarray:
    return (np.asarray(p) >= 0.5).astype(int)


def _label_metric(fn: Callable, **kw) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda y, p: fn(np.asarray(y).astype(int), _binary(p), zero_division=0, **kw)


def _fbeta_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float) -> np.ndarray:
    b2 = beta * beta
    denom = (1 + b2) * tp + b2 * fn + fp
    return np.divide((1 + b2) * tp, denom, out=np.zeros(np.shape(tp), dtype=float), where=denom > 0)


def _fast_fbeta(beta: float, axis: int | None) -> Callable[[np.ndarray, np.ndarray], float]:
    """F-beta of 0/1 arrays: per image (axis 1) or per label (axis 0) then averaged, or pooled (None)."""
    def score(y: np.ndarray, pred: np.ndarray) -> float:
        y, pred = np.asarray(y, dtype=bool), np.asarray(pred) >= 0.5
        tp, fp, fn = ((y & pred).sum(axis=axis), (~y & pred).sum(axis=axis), (y & ~pred).sum(axis=axis))
        return float(np.mean(_fbeta_counts(tp, fp, fn, beta)))
    return score


def _fast_subset(y: np.ndarray, pred: np.ndarray) -> float:
    return float((np.asarray(y, dtype=bool) == (np.asarray(pred) >= 0.5)).all(axis=1).mean())


def _per_label(fn: Callable) -> Callable[[np.ndarray, np.ndarray], float]:
    """Mean of ``fn`` over the labels with both outcomes present (a fold may lack a rare label)."""
    def score(y: np.ndarray, p: np.ndarray) -> float:
        y = np.asarray(y).astype(int)
        values = [fn(y[:, k], p[:, k]) for k in range(y.shape[1]) if 0 < y[:, k].sum() < len(y)]
        return float(np.mean(values)) if values else float("nan")
    return score


def _bce(y: np.ndarray, p: np.ndarray) -> float:
    """Mean column-wise binary log-loss."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(np.mean([_sk("log_loss")(y[:, k], q[:, k], labels=[0, 1]) for k in range(y.shape[1])]))


MULTILABEL_METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("f1_samples", _label_metric(_sk("f1_score"), average="samples"), thresholded=True,
           fast=_fast_fbeta(1, 1)),
    Metric("f2_samples", _label_metric(_sk("fbeta_score"), beta=2, average="samples"), thresholded=True,
           fast=_fast_fbeta(2, 1)),
    Metric("f1_macro", _label_metric(_sk("f1_score"), average="macro"), thresholded=True,
           fast=_fast_fbeta(1, 0)),
    Metric("f1_micro", _label_metric(_sk("f1_score"), average="micro"), thresholded=True,
           fast=_fast_fbeta(1, None)),
    # exact-match (subset) accuracy: what the default metric means for a multi-label competition
    Metric("accuracy", lambda y, p: _sk("accuracy_score")(np.asarray(y).astype(int), _binary(p)),
           thresholded=True, fast=_fast_subset),
    Metric("roc_auc", _per_label(_sk("roc_auc_score")), needs_proba=True),
    Metric("average_precision", _per_label(_sk("average_precision_score")), needs_proba=True),
    Metric("log_loss", _bce, greater_is_better=False, needs_proba=True),
]}

REPORTED_MULTILABEL = ("f1_samples", "f2_samples", "f1_macro", "f1_micro", "roc_auc", "average_precision",
                       "log_loss")


# Ordinal and regression: labels [n] (grade indices, or real values) and continuous predictions [n]
# (or [n, 1], as read back from oof.csv's one ``prediction`` column). A grade metric rounds the
# predictions to the nearest grade, so integer grades (cut-points already applied) pass unchanged.

def _column(p: np.ndarray) -> np.ndarray:
    return np.asarray(p, dtype=float).reshape(len(p), -1)[:, 0]


def _grades(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int)
    top = max(int(y.max()), 1) if len(y) else 1
    return y, np.clip(np.rint(_column(p)), 0, top).astype(int)


def _kappa(weights: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def score(y: np.ndarray, p: np.ndarray) -> float:
        y, g = _grades(y, p)
        if len(np.unique(np.concatenate([y, g]))) < 2:  # sklearn divides 0 by 0 there
            return float(np.array_equal(y, g))
        return _sk("cohen_kappa_score")(y, g, weights=weights)
    return score


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(_sk("mean_squared_error")(np.asarray(y, dtype=float), _column(p))))


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return _sk("mean_absolute_error")(np.asarray(y, dtype=float), _column(p))


REGRESSION_METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("rmse", _rmse, greater_is_better=False),
    Metric("mae", _mae, greater_is_better=False),
]}
ORDINAL_METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("qwk", _kappa("quadratic")),
    Metric("linear_kappa", _kappa("linear")),
    Metric("accuracy", lambda y, p: _sk("accuracy_score")(*_grades(y, p))),
    *REGRESSION_METRICS.values(),  # of the continuous grade predictions
]}
REPORTED_ORDINAL = ("qwk", "linear_kappa", "accuracy", "rmse", "mae")
REPORTED_REGRESSION = ("rmse", "mae")
# the metrics whose name alone says the task under ``task: auto``
ORDINAL_IMPLIED = ("qwk", "linear_kappa")
REGRESSION_IMPLIED = ("rmse", "mae")

ALL_METRIC_NAMES = frozenset(METRICS) | frozenset(MULTILABEL_METRICS) | frozenset(ORDINAL_METRICS)


def greater_is_better(name: str) -> bool:
    """The direction of a metric name, whatever the task (a name shared by several tasks agrees)."""
    return (METRICS.get(name) or MULTILABEL_METRICS.get(name) or ORDINAL_METRICS[name]).greater_is_better


def metrics_for(task: str) -> dict[str, Metric]:
    return {"multi_label": MULTILABEL_METRICS, "ordinal": ORDINAL_METRICS,
            "regression": REGRESSION_METRICS}.get(task, METRICS)


def get_metric(name: str, task: str = "single_label") -> Metric:
    return metrics_for(task)[name]


def reported(task: str = "single_label") -> tuple[str, ...]:
    return {"multi_label": REPORTED_MULTILABEL, "ordinal": REPORTED_ORDINAL,
            "regression": REPORTED_REGRESSION}.get(task, REPORTED)


def score_all(labels: np.ndarray, probs: np.ndarray, names: tuple[str, ...] | None = None,
              task: str = "single_label") -> dict[str, float]:
    table = metrics_for(task)
    return {name: table[name](labels, probs) for name in (names or reported(task))}
