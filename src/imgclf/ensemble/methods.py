"""Ensembling methods over per-model class probabilities, each scored honestly on OOF.

Every method maps ``oofs`` (models x train rows x classes) and ``tests`` (models x test rows x
classes) to one OOF and one test probability matrix. Methods with fitted parameters are scored
out of fold: stacking is fitted on folds != k to predict fold k; weighted voting is reported both
in-sample (weights fitted on the OOF they are scored on) and cross-fitted by fold ("weighted_nested").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from imgclf.metrics import Metric, paired_noise

log = logging.getLogger(__name__)

EPS = 1e-7
METHODS = ("soft", "geometric", "hard", "rank", "weighted", "stacking")  # auto's tie order: simplest first
FITTED = ("weighted", "stacking")  # fitted on the OOF rows that score them


@dataclass
class Blend:
    method: str
    oof: np.ndarray
    test: np.ndarray
    info: dict = field(default_factory=dict)


def _normalise(scores: np.ndarray) -> np.ndarray:
    return scores / scores.sum(axis=-1, keepdims=True)


def hard_vote(probs: np.ndarray) -> np.ndarray:
    """Majority of per-model argmax labels; a tie goes to the class with the larger summed probability.

    Returned as probabilities whose argmax is the voted label: the vote share plus the summed soft
    score scaled below one vote (so it only breaks ties and never overturns a majority).
    """
    n_models, _, n_classes = probs.shape
    votes = np.eye(n_classes)[probs.argmax(axis=2)].sum(axis=0)
    return _normalise(votes + probs.sum(axis=0) / (n_models + 1))


def soft_vote(probs: np.ndarray) -> np.ndarray:
    return probs.mean(axis=0)


def weighted_vote(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights, probs, axes=1)


def geometric_mean(probs: np.ndarray) -> np.ndarray:
    return _normalise(np.exp(np.log(np.clip(probs, EPS, 1.0)).mean(axis=0)))


def rank_average(probs: np.ndarray) -> np.ndarray:
    """Mean per-class rank over models, mapped back onto the soft vote's probability scale.

    Column c of the result orders rows as the mean rank of class c does, and takes its values from
    the sorted soft-vote column c, so rows still sum to about one (renormalised). One model maps to
    itself; for a binary target the positive-class order (what AUC scores) is the mean rank's.
    """
    mean_rank = np.stack([np.column_stack([rankdata(p[:, c]) for c in range(p.shape[1])])
                          for p in probs]).mean(axis=0)
    soft = soft_vote(probs)
    out = np.empty_like(soft)
    for c in range(soft.shape[1]):  # equal mean ranks are ordered by the soft vote, symmetric for binary
        out[np.lexsort((soft[:, c], mean_rank[:, c])), c] = np.sort(soft[:, c])
    return _normalise(np.clip(out, EPS, None))


def _loglik_weights(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Simplex weights minimising the log-loss of the weighted mean (smooth, so SLSQP converges)."""
    n_models = probs.shape[0]
    p_true = np.clip(probs[:, np.arange(len(labels)), labels], EPS, 1.0)  # (models, rows)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        mix = np.clip(w @ p_true, EPS, None)
        return -np.log(mix).mean(), -(p_true / mix).mean(axis=1)

    start = np.full(n_models, 1.0 / n_models)
    res = minimize(loss, start, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * n_models,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}])
    weights = np.clip(res.x if res.success else start, 0.0, None)
    return weights / weights.sum()


def fit_weights(probs: np.ndarray, labels: np.ndarray, metric: Metric, seed: int = 0,
                n_random: int = 96) -> np.ndarray:
    """Non-negative weights summing to 1 that maximise ``metric`` of the weighted mean on ``probs``.

    Label metrics (accuracy, F1...) are piecewise constant in the weights, so gradients are useless:
    the candidates are the log-loss-optimal weights (a smooth surrogate), uniform weights, each
    single model and a seeded Dirichlet sample; the best by ``metric`` wins, ties going to the
    lower log-loss.
    """
    n_models = probs.shape[0]
    if n_models == 1:
        return np.ones(1)
    surrogate = _loglik_weights(probs, labels)
    if metric.name == "log_loss":
        return surrogate
    candidates = weight_candidates(surrogate, seed, n_random)
    p_true = np.clip(probs[:, np.arange(len(labels)), labels], EPS, 1.0)
    sign = 1.0 if metric.greater_is_better else -1.0

    def key(w: np.ndarray) -> tuple[float, float]:
        score = metric(labels, weighted_vote(probs, w))
        return (sign * score if np.isfinite(score) else -np.inf,
                np.log(np.clip(w @ p_true, EPS, None)).mean())

    return max(candidates, key=key)


def weight_candidates(surrogate: np.ndarray, seed: int, n_random: int) -> list[np.ndarray]:
    """The simplex weights a weighted vote chooses among: a smooth surrogate's optimum, uniform
    weights, each single model and a seeded Dirichlet sample."""
    n_models = len(surrogate)
    rng = np.random.default_rng(seed)
    return [surrogate, np.full(n_models, 1.0 / n_models), *np.eye(n_models),
            *rng.dirichlet(np.ones(n_models), size=n_random)]


def stacking(oofs: np.ndarray, tests: np.ndarray, labels: np.ndarray, folds: np.ndarray,
             make_model: Callable[[], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A second-level classifier on the concatenated model probabilities.

    Its OOF predictions come from fits on folds != k predicting fold k only; the test prediction
    comes from one fit on all OOF rows.
    """
    make_model = make_model or (lambda: LogisticRegression(C=1.0, max_iter=2000))
    n_classes = oofs.shape[2]
    features = np.concatenate(list(oofs), axis=1)
    test_features = np.concatenate(list(tests), axis=1)
    oof = np.zeros((len(labels), n_classes))
    for fold in np.unique(folds):
        fit_rows, pred_rows = folds != fold, folds == fold
        oof[pred_rows] = _fit_predict(make_model(), features[fit_rows], labels[fit_rows],
                                      features[pred_rows], n_classes)
    return oof, _fit_predict(make_model(), features, labels, test_features, n_classes)


def _fit_predict(model, x: np.ndarray, y: np.ndarray, x_new: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over all classes, even when the fitting rows miss some of them."""
    out = np.zeros((len(x_new), n_classes))
    seen = np.unique(y)
    if len(seen) == 1:  # nothing to learn: every row is that class
        out[:, seen[0]] = 1.0
        return out
    model.fit(x, y)
    out[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(x_new)
    return out


def run_methods(oofs: np.ndarray, tests: np.ndarray, labels: np.ndarray, folds: np.ndarray,
                metric: Metric, seed: int = 0) -> dict[str, Blend]:
    """Every method's OOF and test probabilities, plus the cross-fitted weighted score."""
    blends = {
        "soft": Blend("soft", soft_vote(oofs), soft_vote(tests)),
        "geometric": Blend("geometric", geometric_mean(oofs), geometric_mean(tests)),
        "hard": Blend("hard", hard_vote(oofs), hard_vote(tests)),
        "rank": Blend("rank", rank_average(oofs), rank_average(tests)),
    }
    weights = fit_weights(oofs, labels, metric, seed)
    blends["weighted"] = Blend("weighted", weighted_vote(oofs, weights), weighted_vote(tests, weights),
                               {"weights": weights.round(4).tolist(), "in_sample": True})
    nested = np.zeros_like(blends["soft"].oof)
    fold_weights = {}
    for fold in np.unique(folds):
        fit_rows, pred_rows = folds != fold, folds == fold
        w = fit_weights(oofs[:, fit_rows], labels[fit_rows], metric, seed)
        nested[pred_rows] = weighted_vote(oofs[:, pred_rows], w)
        fold_weights[int(fold)] = w.round(4).tolist()
    blends["weighted_nested"] = Blend("weighted_nested", nested, blends["weighted"].test,
                                      {"fold_weights": fold_weights})
    stack_oof, stack_test = stacking(oofs, tests, labels, folds)
    blends["stacking"] = Blend("stacking", stack_oof, stack_test)
    return blends


# A member scoring this many paired standard errors below the best single model is left out of the
# blends: texture4's regnetx_002 (OOF 0.76 against resnet10t's 0.93) pulled soft voting to 0.92.
LAGGARD_NOISES = 2.0


def members_worth_blending(oofs: np.ndarray, labels: np.ndarray, metric: Metric) -> list[int]:
    """The models an unweighted vote should include: all but those clearly worse than the best
    single model on OOF (by more than ``LAGGARD_NOISES`` paired standard errors of a label metric;
    a probability metric keeps every model)."""
    if metric.needs_proba:
        return list(range(len(oofs)))
    scores = [metric(labels, oof) for oof in oofs]
    best = max(range(len(scores)), key=lambda i: scores[i] if metric.greater_is_better else -scores[i])
    keep = []
    for i, score in enumerate(scores):
        margin = LAGGARD_NOISES * paired_noise(oofs[best], oofs[i])
        bar = scores[best] - margin if metric.greater_is_better else scores[best] + margin
        if i == best or not metric.better(bar, score):
            keep.append(i)
    return keep


def _judged_by(method: str) -> str:
    return "weighted_nested" if method == "weighted" else method


def selection_score(blends: dict[str, Blend], method: str, labels: np.ndarray, metric: Metric) -> float:
    """The honest OOF score of a method: weighted voting is judged by its cross-fitted version."""
    return metric(labels, blends[_judged_by(method)].oof)


def choose_method(blends: dict[str, Blend], labels: np.ndarray, metric: Metric, wanted: str) -> str:
    """``auto``: the best honest OOF score, simplest first. A method fitted on the OOF rows (weighted,
    stacking) must beat the best so far by more than the paired noise of a label metric: even
    cross-fitted, the largest of six scores on a few hundred rows is an optimistic pick (on 80
    rows stacking won by one image and lost 5-9 points of test accuracy to the plain mean)."""
    if wanted != "auto":
        return wanted
    best, best_score = METHODS[0], None
    for method in METHODS:
        score = selection_score(blends, method, labels, metric)
        bar = best_score
        if method in FITTED and best_score is not None and not metric.needs_proba:
            noise = paired_noise(blends[best].oof, blends[_judged_by(method)].oof)
            bar = best_score + (noise if metric.greater_is_better else -noise)
            if not metric.better(score, bar) and metric.better(score, best_score):
                log.info("ensemble: %s scores OOF %s %.4f against %s's %.4f, within the paired noise "
                         "%.4f: %s kept", method, metric.name, score, best, best_score, noise, best)
        if metric.better(score, bar):
            best, best_score = method, score
    return best
