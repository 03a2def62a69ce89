"""Cut-points between grades, fitted on continuous OOF predictions (the "optimised rounder").

A prediction below cut-point 0 is grade 0, between cut-points k-1 and k grade k. The fit starts at the
half-integers (plain rounding): a coordinate search, then Nelder-Mead from its result, each step kept
only when it raises the metric, so the fit can only keep or raise the score on the rows it is
fitted on. That in-sample score is optimistic; the score this module reports is cross-fitted: fold k
is cut by the cut-points fitted on the other folds only. The cut-points kept for the test
predictions are fitted on every OOF row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from imgclf.metrics import Metric


def half_integers(n_grades: int) -> np.ndarray:
    return np.arange(n_grades - 1) + 0.5


def apply_cuts(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Grade index of each continuous prediction."""
    return np.searchsorted(np.sort(np.asarray(cuts, dtype=float)), np.asarray(values, dtype=float).ravel(),
                           side="right")


def fit_cuts(labels: np.ndarray, values: np.ndarray, n_grades: int, metric: Metric) -> np.ndarray:
    """Cut-points maximising (or minimising) ``metric`` of the cut grades on these rows."""
    start = half_integers(n_grades)
    sign = -1.0 if metric.greater_is_better else 1.0

    def loss(cuts: np.ndarray) -> float:
        return sign * metric(labels, apply_cuts(values, cuts))

    cuts = _coordinate_search(loss, start)
    result = minimize(loss, cuts, method="Nelder-Mead",
                      options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 200 * n_grades})
    return np.sort(result.x) if loss(result.x) <= loss(cuts) else cuts


def _coordinate_search(loss: Callable[[np.ndarray], float], start: np.ndarray, passes: int = 2,
                       steps: int = 25) -> np.ndarray:
    """Each cut-point in turn over a grid between its neighbours: the metric is a step function of
    the cut-points, where Nelder-Mead's first simplex alone often sees no change and stops."""
    cuts, best = start.copy(), loss(start)
    for _ in range(passes):
        for k in range(len(cuts)):
            low = cuts[k - 1] if k else cuts[k] - 1.0
            high = cuts[k + 1] if k + 1 < len(cuts) else cuts[k] + 1.0
            for value in np.linspace(low, high, steps)[1:-1]:
                trial = cuts.copy()
                trial[k] = value
                score = loss(trial)
                if score < best:
                    cuts, best = trial, score
    return cuts


def cross_fitted(labels: np.ndarray, values: np.ndarray, folds: np.ndarray, n_grades: int,
                 metric: Metric) -> tuple[np.ndarray, dict[int, list[float]]]:
    """Grades of every OOF row, fold k cut by the cut-points fitted on the other folds; and those
    cut-points per fold."""
    grades = np.zeros(len(values), dtype=int)
    per_fold = {}
    for fold in np.unique(folds):
        fit_rows, rows = folds != fold, folds == fold
        cuts = fit_cuts(labels[fit_rows], values[fit_rows], n_grades, metric)
        grades[rows] = apply_cuts(values[rows], cuts)
        per_fold[int(fold)] = cuts.round(4).tolist()
    return grades, per_fold


@dataclass
class CutFit:
    cuts: np.ndarray  # fitted on every OOF row (or the half-integers): what the test predictions use
    honest_score: float  # of what is used: the cross-fitted cut-points, or plain rounding
    cross_fitted_score: float  # each fold cut by the cut-points fitted on the other folds
    in_sample_score: float
    rounded_score: float  # plain rounding (the half-integers)
    fold_cuts: dict[int, list[float]]
    used: bool = True  # False: rounding scored better than the cross-fitted cut-points

    def to_dict(self) -> dict:
        return {"cutpoints": self.cuts.round(4).tolist(), "fitted_cutpoints_used": self.used,
                "honest_oof_score": self.honest_score, "cross_fitted_oof_score": self.cross_fitted_score,
                "in_sample_oof_score": self.in_sample_score, "rounded_oof_score": self.rounded_score,
                "fold_cutpoints": self.fold_cuts}


def fit_cutpoints(labels: np.ndarray, values: np.ndarray, folds: np.ndarray, n_grades: int,
                  metric: Metric) -> CutFit:
    """Fitted cut-points, kept only when their cross-fitted score beats plain rounding (which needs no
    fit): on a few hundred rows a fit can lose more on the held-out fold than it gains."""
    grades, fold_cuts = cross_fitted(labels, values, folds, n_grades, metric)
    honest = metric(labels, grades)
    rounded = metric(labels, apply_cuts(values, half_integers(n_grades)))
    used = metric.better(honest, rounded)
    cuts = fit_cuts(labels, values, n_grades, metric) if used else half_integers(n_grades)
    return CutFit(cuts=cuts, honest_score=honest if used else rounded, cross_fitted_score=honest,
                  in_sample_score=metric(labels, apply_cuts(values, cuts)), rounded_score=rounded,
                  fold_cuts=fold_cuts, used=used)
