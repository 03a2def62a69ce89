"""Ensembling multi-label predictions: every method works label by label on per-label probabilities
(models x rows x labels), and a label metric is judged after thresholds fitted out of fold.

Methods: soft (mean), geometric (per label, of p and 1 - p, renormalised), hard (per-label majority
of the models' 0.5 votes, ties broken by the mean probability), rank (per-label mean rank on the
soft values' scale: what column-wise AUC sees), weighted (simplex weights, log-loss surrogate plus
candidates judged by the metric, in-sample and cross-fitted), stacking (one logistic regression per
label on the models' logits of that label, fitted on the other folds).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from imgclf.ensemble.methods import Blend, weight_candidates
from imgclf.metrics import Metric
from imgclf.thresholds import cross_fitted, tuned_score

EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q / (1 - q))


def soft(probs: np.ndarray) -> np.ndarray:
    return probs.mean(axis=0)


def geometric(probs: np.ndarray) -> np.ndarray:
    q = np.clip(probs, EPS, 1 - EPS)
    pos, neg = np.exp(np.log(q).mean(axis=0)), np.exp(np.log(1 - q).mean(axis=0))
    return pos / (pos + neg)


def hard(probs: np.ndarray) -> np.ndarray:
    """Vote share of the models with p >= 0.5, plus the mean probability scaled below one vote."""
    n = probs.shape[0]
    votes = (probs >= 0.5).sum(axis=0)
    return (votes + probs.mean(axis=0)) / (n + 1)


def rank(probs: np.ndarray) -> np.ndarray:
    """Per label: rows ordered by their mean rank over models, valued by the sorted soft vote."""
    mean_rank = np.stack([np.column_stack([rankdata(p[:, k]) for k in range(p.shape[1])])
                          for p in probs]).mean(0)
    mean = soft(probs)
    out = np.empty_like(mean)
    for k in range(mean.shape[1]):
        out[np.lexsort((mean[:, k], mean_rank[:, k])), k] = np.sort(mean[:, k])
    return out


def weighted(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights, probs, axes=1)


def _bce_weights(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    n_models = probs.shape[0]
    start = np.full(n_models, 1.0 / n_models)

    def loss(w: np.ndarray) -> float:
        mix = np.clip(weighted(probs, w), EPS, 1 - EPS)
        return float(-(labels * np.log(mix) + (1 - labels) * np.log(1 - mix)).mean())

    res = minimize(loss, start, method="SLSQP", bounds=[(0.0, 1.0)] * n_models,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}])
    w = np.clip(res.x if res.success else start, 0.0, None)
    return w / w.sum()


def fit_weights(probs: np.ndarray, labels: np.ndarray, metric: Metric, seed: int = 0,
                n_random: int = 32) -> np.ndarray:
    """Simplex weights: the BCE-optimal ones, uniform, each model and a seeded Dirichlet sample, the
    best by ``metric`` (a label metric at its best global threshold) winning."""
    n_models = probs.shape[0]
    if n_models == 1:
        return np.ones(1)
    surrogate = _bce_weights(probs, labels)
    if metric.name == "log_loss":
        return surrogate
    candidates = weight_candidates(surrogate, seed, n_random)
    sign = 1.0 if metric.greater_is_better else -1.0
    scores = [sign * tuned_score(labels, weighted(probs, w), metric) for w in candidates]
    return candidates[int(np.nanargmax(scores))]


def _stack_label(x: np.ndarray, y: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    if y.min() == y.max():  # one outcome only in the fitting rows: nothing to learn
        return np.full(len(x_new), float(y[0]))
    return LogisticRegression(C=1.0, max_iter=2000).fit(x, y).predict_proba(x_new)[:, 1]


def stacking(oofs: np.ndarray, tests: np.ndarray, labels: np.ndarray,
             folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression per label on the models' logits of that label; OOF from the other folds."""
    oof, test = np.zeros(oofs.shape[1:]), np.zeros(tests.shape[1:])
    for k in range(oofs.shape[2]):
        x, x_test, y = _logit(oofs[:, :, k].T), _logit(tests[:, :, k].T), labels[:, k].astype(int)
        for fold in np.unique(folds):
            fit_rows, rows = folds != fold, folds == fold
            oof[rows, k] = _stack_label(x[fit_rows], y[fit_rows], x[rows])
        test[:, k] = _stack_label(x, y, x_test)
    return oof, test


def run_methods(oofs: np.ndarray, tests: np.ndarray, labels: np.ndarray, folds: np.ndarray, metric: Metric,
                seed: int = 0) -> dict[str, Blend]:
    blends = {name: Blend(name, fn(oofs), fn(tests))
              for name, fn in (("soft", soft), ("geometric", geometric), ("hard", hard), ("rank", rank))}
    w = fit_weights(oofs, labels, metric, seed)
    blends["weighted"] = Blend("weighted", weighted(oofs, w), weighted(tests, w),
                               {"weights": w.round(4).tolist(), "in_sample": True})
    nested, fold_weights = np.zeros(oofs.shape[1:]), {}
    for fold in np.unique(folds):
        fit_rows, rows = folds != fold, folds == fold
        wk = fit_weights(oofs[:, fit_rows], labels[fit_rows], metric, seed)
        nested[rows] = weighted(oofs[:, rows], wk)
        fold_weights[int(fold)] = wk.round(4).tolist()
    blends["weighted_nested"] = Blend("weighted_nested", nested, blends["weighted"].test,
                                      {"fold_weights": fold_weights})
    blends["stacking"] = Blend("stacking", *stacking(oofs, tests, labels, folds))
    return blends


def honest_score(labels: np.ndarray, probs: np.ndarray, folds: np.ndarray, metric: Metric) -> float:
    """A probability metric as is; a label metric after one global threshold fitted on the other folds
    (the cheap, comparable score for choosing a method; the chosen one then gets the full fit)."""
    if not metric.thresholded:
        return metric(labels, probs)
    return metric(labels, cross_fitted(labels, probs, folds, metric, "global", False))
