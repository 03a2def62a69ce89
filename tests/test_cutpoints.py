"""Cut-points fitted on continuous predictions: they raise the in-sample score over rounding, and
the reported score of fold k never uses fold k's labels."""

from __future__ import annotations

import numpy as np

from imgclf.cutpoints import apply_cuts, cross_fitted, fit_cutpoints, fit_cuts, half_integers
from imgclf.metrics import get_metric

QWK = get_metric("qwk", "ordinal")


def _biased(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grades 0-4 and predictions squeezed towards the mean (what a regression head does on rare
    extreme grades): rounding under-calls 0 and 4, cut-points fix it."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(5, size=n, p=[0.49, 0.10, 0.27, 0.06, 0.08])
    values = 1.2 + 0.55 * (labels - 1.2) + rng.normal(0, 0.25, size=n)
    return labels, values, np.arange(n) % 4


def test_apply_cuts_bins_by_the_sorted_cutpoints() -> None:
    cuts = np.array([0.5, 1.5, 2.5, 3.5])
    assert apply_cuts(np.array([-1, 0.49, 0.5, 1.7, 3.49, 9]), cuts).tolist() == [0, 0, 1, 2, 3, 4]
    assert apply_cuts(np.array([2.0]), cuts[::-1]).tolist() == [2]
    assert half_integers(3).tolist() == [0.5, 1.5]


def test_fitted_cuts_beat_rounding_in_and_out_of_sample() -> None:
    labels, values, folds = _biased()
    rounded = QWK(labels, apply_cuts(values, half_integers(5)))
    cuts = fit_cuts(labels, values, 5, QWK)
    assert QWK(labels, apply_cuts(values, cuts)) > rounded + 0.03
    fit = fit_cutpoints(labels, values, folds, 5, QWK)
    assert fit.used and fit.cross_fitted_score > rounded + 0.02
    assert fit.in_sample_score >= QWK(labels, apply_cuts(values, cuts)) - 1e-9
    assert np.all(np.diff(fit.cuts) > 0) and len(fit.fold_cuts) == 4


def test_cross_fitting_never_reads_the_scored_folds_labels() -> None:
    """Scrambling fold 0's labels changes the cut-points of every other fold, not fold 0's grades.
    A fit on all rows (or on fold 0 itself) would move fold 0's grades with its labels."""
    labels, values, folds = _biased()
    grades, cuts = cross_fitted(labels, values, folds, 5, QWK)
    scrambled = labels.copy()
    rows = folds == 0
    scrambled[rows] = np.random.default_rng(1).permutation(4 - labels[rows])  # reversed and shuffled
    grades2, cuts2 = cross_fitted(scrambled, values, folds, 5, QWK)
    assert np.array_equal(grades[rows], grades2[rows]) and cuts[0] == cuts2[0]
    assert not np.array_equal(grades[~rows], grades2[~rows])  # the other folds did see the change
