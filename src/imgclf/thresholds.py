"""Decision thresholds for multi-label label metrics (F1/F2 per image, macro/micro F1), fitted on OOF.

A threshold that maximises the metric on the rows it is scored on is optimistic, so the score this
module reports is cross-fitted: the thresholds that binarise fold k are fitted on the other folds
only. The thresholds kept for the test predictions are then fitted on every OOF row.

Modes: ``global`` (one threshold for every label, searched on ``GLOBAL_GRID``), ``per_label``
(coordinate ascent from the global one, one label at a time on ``LABEL_GRID``: per-image metrics
do not split by label, so labels are not independent), ``fixed``. ``at_least_one`` gives an image
with no label above its threshold the label of highest probability relative to its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np

from imgclf.metrics import Metric

GLOBAL_GRID = np.round(np.arange(0.02, 0.99, 0.02), 2)
LABEL_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


def binarise(probs: np.ndarray, thresholds: np.ndarray | float, at_least_one: bool = False) -> np.ndarray:
    """0/1 predictions: probability >= the label's threshold (and, at_least_one, never an empty row)."""
    t = np.broadcast_to(np.asarray(thresholds, dtype=float), probs.shape[1:])
    out = (probs >= t).astype(int)
    if at_least_one:
        empty = out.sum(axis=1) == 0
        best = (probs[empty] - t).argmax(axis=1)
        out[np.flatnonzero(empty), best] = 1
    return out


def _score(metric: Metric, labels: np.ndarray, probs: np.ndarray, t: np.ndarray | float, one: bool) -> float:
    """The search's objective: the metric's numpy twin when it has one (sklearn's per-call overhead
    would dominate thousands of calls), sign-flipped for lower-is-better metrics."""
    value = (metric.fast or metric)(labels, binarise(probs, t, one))
    return value if metric.greater_is_better else -value


def best_global(labels: np.ndarray, probs: np.ndarray, metric: Metric, at_least_one: bool = False) -> float:
    """The grid threshold with the best score (ties: the one nearest 0.5)."""
    scores = [_score(metric, labels, probs, t, at_least_one) for t in GLOBAL_GRID]
    best = max(scores)
    tied = [t for t, s in zip(GLOBAL_GRID, scores, strict=True) if s == best]
    return float(min(tied, key=lambda t: abs(t - 0.5)))


def best_per_label(labels: np.ndarray, probs: np.ndarray, metric: Metric,
                   at_least_one: bool = False) -> np.ndarray:
    """One coordinate-ascent pass over the labels, starting from the best global threshold."""
    t = np.full(probs.shape[1], best_global(labels, probs, metric, at_least_one))
    current = _score(metric, labels, probs, t, at_least_one)
    for k in range(probs.shape[1]):
        for value in LABEL_GRID:
            trial = t.copy()
            trial[k] = value
            score = _score(metric, labels, probs, trial, at_least_one)
            if score > current:
                t, current = trial, score
    return t


def _fit(labels: np.ndarray, probs: np.ndarray, metric: Metric, mode: str, one: bool,
         fixed: float) -> np.ndarray:
    if mode == "fixed":
        return np.full(probs.shape[1], fixed)
    if mode == "global":
        return np.full(probs.shape[1], best_global(labels, probs, metric, one))
    return best_per_label(labels, probs, metric, one)


@dataclass
class ThresholdFit:
    mode: str
    at_least_one: bool
    thresholds: np.ndarray  # fitted on every OOF row: what the test predictions use
    honest_score: float  # the metric of the cross-fitted OOF predictions
    in_sample_score: float  # the metric when ``thresholds`` binarise the rows they were fitted on
    fixed_score: float  # the metric at ``fixed`` (0.5 by default), for comparison
    candidates: dict[str, float] = field(default_factory=dict)  # honest score of each mode tried

    def to_dict(self, labels: list[str]) -> dict:
        return {"mode": self.mode, "at_least_one": self.at_least_one,
                "thresholds": dict(zip(labels, self.thresholds.round(4).tolist(), strict=True)),
                "honest_oof_score": self.honest_score, "in_sample_oof_score": self.in_sample_score,
                "fixed_threshold_oof_score": self.fixed_score, "candidates": self.candidates}


def cross_fitted(labels: np.ndarray, probs: np.ndarray, folds: np.ndarray, metric: Metric, mode: str,
                 at_least_one: bool, fixed: float = 0.5) -> np.ndarray:
    """0/1 OOF predictions whose fold k was binarised by thresholds fitted on the other folds."""
    out = np.zeros(probs.shape, dtype=int)
    for fold in np.unique(folds):
        fit_rows, rows = folds != fold, folds == fold
        t = _fit(labels[fit_rows], probs[fit_rows], metric, mode, at_least_one, fixed)
        out[rows] = binarise(probs[rows], t, at_least_one)
    return out


def fit_thresholds(labels: np.ndarray, probs: np.ndarray, folds: np.ndarray, metric: Metric,
                   mode: str = "auto", at_least_one: str = "auto", fixed: float = 0.5) -> ThresholdFit:
    """Thresholds for ``metric``; ``auto`` modes pick the candidate with the best cross-fitted score
    (ties go to the simpler one: global before per_label, at_least_one off before on)."""
    modes = ["global", "per_label"] if mode == "auto" else [mode]
    ones = [False, True] if at_least_one == "auto" else [at_least_one == "on"]
    candidates: dict[tuple[str, bool], float] = {}
    for m, one in product(modes, ones):
        candidates[(m, one)] = metric(labels, cross_fitted(labels, probs, folds, metric, m, one, fixed))
    sign = 1.0 if metric.greater_is_better else -1.0
    best = max(candidates, key=lambda c: sign * candidates[c])  # max keeps the first of equals
    chosen_mode, one = best
    thresholds = _fit(labels, probs, metric, chosen_mode, one, fixed)
    return ThresholdFit(
        mode=chosen_mode, at_least_one=one, thresholds=thresholds, honest_score=float(candidates[best]),
        in_sample_score=metric(labels, binarise(probs, thresholds, one)),
        fixed_score=metric(labels, binarise(probs, fixed)),
        candidates={f"{m}{'+at_least_one' if o else ''}": float(v) for (m, o), v in candidates.items()})


def tuned_score(labels: np.ndarray, probs: np.ndarray, metric: Metric) -> float:
    """``metric`` of probabilities; a thresholded one at its best global threshold on these rows
    (in-sample: for comparing models and epochs, not as an estimate of the leaderboard)."""
    if not metric.thresholded:
        return metric(labels, probs)
    return metric(labels, binarise(probs, best_global(labels, probs, metric)))
