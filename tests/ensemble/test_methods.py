"""Ensembling methods on hand-built probabilities, and the strict id alignment of predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from imgclf.ensemble.methods import (
    METHODS,
    Blend,
    choose_method,
    fit_weights,
    hard_vote,
    members_worth_blending,
    rank_average,
    run_methods,
    soft_vote,
    stacking,
)
from imgclf.metrics import get_metric

ACC = get_metric("accuracy")


def test_hard_vote_majority_and_soft_tie_break():
    # rows: (A, A, B) -> A; (A, B, C) three-way tie -> the largest summed probability (B, not the
    # first model's A); (A, B, B) -> B although the soft mean prefers A.
    m1 = [[0.6, 0.3, 0.1], [0.40, 0.35, 0.25], [0.9, 0.1, 0.0]]
    m2 = [[0.7, 0.2, 0.1], [0.05, 0.50, 0.45], [0.45, 0.55, 0.0]]
    m3 = [[0.1, 0.8, 0.1], [0.00, 0.45, 0.55], [0.45, 0.55, 0.0]]
    probs = np.array([m1, m2, m3])
    voted = hard_vote(probs)
    assert voted.argmax(axis=1).tolist() == [0, 1, 1]
    assert soft_vote(probs).argmax(axis=1).tolist()[2] == 0  # the majority overrules the soft mean
    np.testing.assert_allclose(voted.sum(axis=1), 1.0)
    # A tie broken the other way when the summed probabilities say so.
    m3_c = np.array(m3)
    m3_c[1] = [0.0, 0.1, 0.9]
    assert hard_vote(np.array([m1, m2, m3_c.tolist()])).argmax(axis=1)[1] == 2


def complementary_models(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model A is confidently right on the first half of the rows and unsure elsewhere, model B
    the other way round; model C is confident noise. Folds: 5, interleaved."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    onehot = np.eye(3)[labels]

    def unsure() -> np.ndarray:
        return rng.dirichlet(np.ones(3) * 2.0, n)

    half = (np.arange(n) < n // 2)[:, None]
    model_a = np.where(half, 0.1 + 0.7 * onehot, unsure())
    model_b = np.where(~half, 0.1 + 0.7 * onehot, unsure())
    model_c = np.eye(3)[rng.integers(0, 3, n)] * 0.97 + 0.01
    return np.stack([model_a, model_b, model_c]), labels, np.arange(n) % 5


def test_weighted_vote_beats_best_single_model_on_complementary_models():
    oofs, labels, folds = complementary_models()
    singles = [ACC(labels, p) for p in oofs]
    blends = run_methods(oofs, oofs[:, :50], labels, folds, ACC)
    weights = np.array(blends["weighted"].info["weights"])
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0, abs=1e-3)
    assert weights[2] < 0.2 and weights[0] > 0.2 and weights[1] > 0.2  # the noise model is down-weighted
    weighted = ACC(labels, blends["weighted"].oof)
    assert weighted >= max(singles) + 0.15
    assert weighted > ACC(labels, blends["soft"].oof)  # soft voting suffers from the confident noise model
    assert ACC(labels, blends["weighted_nested"].oof) >= max(singles) + 0.15  # and it holds out of fold
    assert choose_method(blends, labels, ACC, "auto") in {"weighted", "stacking"}
    assert choose_method(blends, labels, ACC, "geometric") == "geometric"


def _blends_where_stacking_changes(n_changed: int, n_fixed: int) -> tuple[dict, np.ndarray]:
    """80 rows, 3 classes; every method predicts as the plain mean (60 right) except stacking,
    which changes the class of ``n_changed`` rows: ``n_fixed`` wrong ones made right, the others
    right ones made wrong, then as many wrong ones made right (a net gain of ``n_fixed`` rows
    when the others come in pairs)."""
    labels = np.arange(80) % 3
    mean = np.eye(3)[labels] * 0.6 + 0.1
    mean[60:] = np.eye(3)[(labels[60:] + 1) % 3] * 0.6 + 0.1  # rows 60-79 wrong
    stacked = mean.copy()
    swaps = (n_changed - n_fixed) // 2
    made_right = list(range(60, 60 + n_fixed + swaps))
    made_wrong = list(range(swaps))
    stacked[made_right] = np.eye(3)[labels[made_right]] * 0.6 + 0.1
    stacked[made_wrong] = np.eye(3)[(labels[made_wrong] + 2) % 3] * 0.6 + 0.1
    blends = {m: Blend(m, mean, mean) for m in (*METHODS, "weighted_nested")}
    blends["stacking"] = Blend("stacking", stacked, stacked)
    return blends, labels


def test_auto_keeps_the_plain_mean_unless_a_fitted_method_beats_it_by_more_than_its_paired_noise():
    blends, labels = _blends_where_stacking_changes(n_changed=16, n_fixed=2)  # +2 rows, noise 4 rows
    assert ACC(labels, blends["stacking"].oof) == pytest.approx(ACC(labels, blends["soft"].oof) + 2 / 80)
    assert choose_method(blends, labels, ACC, "auto") == "soft"
    assert choose_method(blends, labels, ACC, "stacking") == "stacking"
    blends, labels = _blends_where_stacking_changes(n_changed=16, n_fixed=8)  # +8 rows, noise 4 rows
    assert choose_method(blends, labels, ACC, "auto") == "stacking"
    blends, labels = _blends_where_stacking_changes(n_changed=2, n_fixed=2)  # +2 rows, noise 1.4 rows
    assert choose_method(blends, labels, ACC, "auto") == "stacking"


def _one_hot_with_errors(labels: np.ndarray, wrong: np.ndarray, n_classes: int) -> np.ndarray:
    predicted = np.where(wrong, (labels + 1) % n_classes, labels)
    return np.eye(n_classes)[predicted] * 0.8 + 0.2 / n_classes


def test_a_clearly_worse_model_is_left_out_of_the_blends_and_a_close_one_is_not():
    """texture4's measured case: resnet10t at OOF 0.93, regnetx_002 at 0.76; their soft vote scored
    0.92, under the better model alone. A model within two paired standard errors of the best stays
    (it may err differently); under a probability metric every model stays."""
    labels, rows = np.random.default_rng(0).integers(0, 4, 400), np.arange(400)
    best = _one_hot_with_errors(labels, rows < 28, 4)  # 0.93
    close = _one_hot_with_errors(labels, (rows >= 20) & (rows < 56), 4)  # 0.91: 2 rows worse, noise 5.3
    laggard = _one_hot_with_errors(labels, (rows >= 100) & (rows < 200), 4)  # 0.75
    oofs = np.stack([laggard, best, close])
    assert members_worth_blending(oofs, labels, ACC) == [1, 2]
    assert members_worth_blending(oofs[1:], labels, ACC) == [0, 1]
    assert members_worth_blending(oofs, labels, get_metric("log_loss")) == [0, 1, 2]
    assert members_worth_blending(oofs[:1], labels, ACC) == [0]


def test_fit_weights_for_log_loss_and_single_model():
    oofs, labels, _ = complementary_models(seed=1)
    weights = fit_weights(oofs, labels, get_metric("log_loss"))
    assert weights[2] < 0.1 and weights.sum() == pytest.approx(1.0)
    assert fit_weights(oofs[:1], labels, ACC).tolist() == [1.0]


def noise_problem(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(2), size=(2, n)), rng.integers(0, 2, n), np.arange(n) % 5


def test_stacking_scores_out_of_fold_only():
    oofs, labels, folds = noise_problem()
    features = np.concatenate(list(oofs), axis=1)
    one_nn = KNeighborsClassifier(n_neighbors=1).fit(features, labels)
    assert one_nn.score(features, labels) == 1.0  # in-sample, this stacker memorises the noise labels
    oof, test = stacking(oofs, oofs[:, :20], labels, folds, make_model=lambda: KNeighborsClassifier(1))
    assert 0.38 <= ACC(labels, oof) <= 0.62  # ... but its OOF score is chance
    assert ACC(labels[:20], test) == 1.0  # the test model is fitted on every OOF row
    default_oof, _ = stacking(oofs, oofs, labels, folds)
    assert 0.38 <= ACC(labels, default_oof) <= 0.62


def test_stacking_prediction_of_a_fold_ignores_that_folds_labels():
    oofs, labels, folds = complementary_models(n=300)
    oof, _ = stacking(oofs, oofs, labels, folds)
    assert ACC(labels, oof) > 0.9  # it does learn from informative models
    shuffled = labels.copy()
    in_fold0 = folds == 0
    shuffled[in_fold0] = np.random.default_rng(3).permutation(3)[labels[in_fold0]]
    oof_shuffled, _ = stacking(oofs, oofs, shuffled, folds)
    np.testing.assert_allclose(oof_shuffled[in_fold0], oof[in_fold0])  # fold 0 never saw its labels
    assert not np.allclose(oof_shuffled[~in_fold0], oof[~in_fold0])  # the others were fitted on them


def test_single_model_methods_reduce_to_the_model():
    oofs, labels, folds = complementary_models(n=200)
    one = oofs[:1]
    blends = run_methods(one, one, labels, folds, ACC)
    for method in ("soft", "geometric", "weighted", "weighted_nested", "rank"):
        np.testing.assert_allclose(blends[method].oof, one[0] / one[0].sum(axis=1, keepdims=True), atol=1e-9)
    assert (blends["hard"].oof.argmax(axis=1) == one[0].argmax(axis=1)).all()
    assert blends["stacking"].oof.shape == one[0].shape


def test_rank_average_keeps_the_mean_rank_order():
    rng = np.random.default_rng(0)
    pos = rng.random((2, 50))
    probs = np.stack([np.column_stack([1 - p, p]) for p in pos])
    ranked = rank_average(probs)
    mean_rank = np.argsort(np.argsort(pos, axis=1), axis=1).mean(axis=0)
    by_rank = ranked[np.lexsort((ranked[:, 1], mean_rank)), 1]
    assert (np.diff(by_rank) >= 0).all()  # a higher mean rank never gets a lower positive probability
    assert len(np.unique(mean_rank)) < len(mean_rank)  # the fixture has tied mean ranks
    np.testing.assert_allclose(np.sort(ranked[:, 1]), np.sort(pos.mean(axis=0)))  # soft vote's scale
