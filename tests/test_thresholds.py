"""Thresholds fitted on OOF: better than 0.5 where labels are rare, and reported cross-fitted."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.metrics import get_metric
from imgclf.thresholds import binarise, cross_fitted, fit_thresholds


def _rare_oof(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """6 labels, the last three rare (5 %); a model whose rare-label probabilities stay below 0.5
    although they rank the positives first (what BCE training on rare labels gives)."""
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.4, 0.3, 0.05, 0.05, 0.05])
    labels = (rng.random((n, 6)) < rates).astype(int)
    labels[labels.sum(axis=1) == 0, 0] = 1
    scores = rng.normal(size=(n, 6)) + 2.5 * labels
    probs = 1 / (1 + np.exp(-(scores - 2.5 - 2.0 * (rates < 0.1))))
    folds = np.arange(n) % 5
    return labels, probs, folds


def test_fitted_thresholds_beat_a_fixed_half_on_rare_labels() -> None:
    labels, probs, folds = _rare_oof()
    metric = get_metric("f2_samples", "multi_label")
    fit = fit_thresholds(labels, probs, folds, metric)
    at_half = metric(labels, binarise(probs, 0.5))
    assert fit.fixed_score == pytest.approx(at_half)
    assert fit.honest_score > at_half + 0.05, (fit.honest_score, at_half)
    assert (fit.thresholds < 0.5).any()
    # the reported score is the cross-fitted one, never the in-sample score of the final thresholds
    again = metric(labels, cross_fitted(labels, probs, folds, metric, fit.mode, fit.at_least_one))
    assert fit.honest_score == pytest.approx(again)
    assert fit.in_sample_score >= fit.honest_score
    assert set(fit.candidates) == {"global", "global+at_least_one", "per_label", "per_label+at_least_one"}
    assert fit.honest_score == pytest.approx(max(fit.candidates.values()))


def test_cross_fitting_never_uses_the_scored_folds_labels() -> None:
    """Changing fold 0's labels changes nothing of fold 0's binarised predictions."""
    labels, probs, folds = _rare_oof(1)
    metric = get_metric("f1_macro", "multi_label")
    before = cross_fitted(labels, probs, folds, metric, "per_label", False)
    flipped = labels.copy()
    flipped[folds == 0] = 1 - flipped[folds == 0]
    after = cross_fitted(flipped, probs, folds, metric, "per_label", False)
    np.testing.assert_array_equal(before[folds == 0], after[folds == 0])
    # the other folds' thresholds were fitted on fold 0's labels, so their predictions move
    assert not np.array_equal(before[folds != 0], after[folds != 0])


def test_at_least_one_rule_and_fixed_mode() -> None:
    probs = np.array([[0.1, 0.3, 0.2], [0.9, 0.1, 0.6]])
    np.testing.assert_array_equal(binarise(probs, 0.5, at_least_one=True), [[0, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(binarise(probs, np.array([0.05, 0.5, 0.5])), [[1, 0, 0], [1, 0, 1]])
    labels, p, folds = _rare_oof(2, 100)
    fit = fit_thresholds(labels, p, folds, get_metric("f1_samples", "multi_label"), "fixed", "off", 0.3)
    assert (fit.thresholds == 0.3).all() and fit.honest_score == pytest.approx(fit.in_sample_score)
