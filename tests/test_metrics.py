"""Each metric against scikit-learn called directly, and the direction each one is optimised in."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from imgclf.metrics import METRICS, REPORTED, get_metric, score_all


@pytest.fixture
def example() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2, 3] * 10)
    logits = rng.normal(size=(40, 4)) + 1.5 * np.eye(4)[labels]  # informative but imperfect
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probs


def test_each_metric_equals_sklearn(example):
    y, p = example
    pred = p.argmax(axis=1)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
        "precision_macro": skm.precision_score(y, pred, average="macro"),
        "recall_macro": skm.recall_score(y, pred, average="macro"),
        "roc_auc": skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y, p),
        "top3_accuracy": skm.top_k_accuracy_score(y, p, k=3),
        "top5_accuracy": 1.0,  # 4 classes: the true class is always among the top 5
    }
    assert set(expected) == set(METRICS)
    for name, value in expected.items():
        assert get_metric(name)(y, p) == pytest.approx(value, abs=1e-12), name
    assert 0.4 < expected["accuracy"] < 1.0  # the example is neither trivial nor random


def test_binary_roc_auc_uses_positive_column():
    y = np.array([0, 0, 1, 1, 0, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    p = np.stack([1 - p1, p1], axis=1)
    assert get_metric("roc_auc")(y, p) == pytest.approx(skm.roc_auc_score(y, p1))


def test_roc_auc_of_a_fold_missing_a_class_averages_present_classes(example):
    y, p = example
    keep = y != 3  # the rarest class is absent from this fold; sklearn's ovr would raise
    got = get_metric("roc_auc")(y[keep], p[keep])
    expected = np.mean([skm.roc_auc_score(y[keep] == k, p[keep][:, k]) for k in range(3)])
    assert got == pytest.approx(expected)
    assert np.isnan(get_metric("roc_auc")(np.zeros(4, int), p[:4]))


def test_log_loss_accepts_rounded_probabilities_silently(example):
    y, p = example
    rounded = np.round(p, 3)  # as read back from a CSV: rows no longer sum to exactly 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = get_metric("log_loss")(y, rounded)
    assert value == pytest.approx(skm.log_loss(y, p), abs=5e-3)


def test_directions():
    for name in METRICS:
        assert METRICS[name].greater_is_better is (name != "log_loss"), name
    log_loss, acc = get_metric("log_loss"), get_metric("accuracy")
    assert log_loss.better(0.1, 0.2) and not log_loss.better(0.3, 0.2)
    assert acc.better(0.9, 0.8) and not acc.better(0.7, 0.8)
    assert acc.better(0.5, None) and not acc.better(float("nan"), None)


def test_score_all_reports_every_named_metric(example):
    y, p = example
    scores = score_all(y, p)
    assert list(scores) == list(REPORTED)
    assert scores["log_loss"] == pytest.approx(skm.log_loss(y, p))


# Multi-label: a 0/1 label matrix [n, L] and per-label probabilities.
@pytest.fixture
def multilabel_example() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = (rng.random((60, 6)) < 0.35).astype(int)
    y[:2] = 0  # images without a label: sklearn's zero_division cases
    probs = 1 / (1 + np.exp(-(rng.normal(size=(60, 6)) + 2.0 * (2 * y - 1))))
    return y, probs


def test_each_multilabel_metric_equals_sklearn(multilabel_example) -> None:
    y, p = multilabel_example
    pred = (p >= 0.5).astype(int)
    expected = {
        "f1_samples": skm.f1_score(y, pred, average="samples", zero_division=0),
        "f2_samples": skm.fbeta_score(y, pred, beta=2, average="samples", zero_division=0),
        "f1_macro": skm.f1_score(y, pred, average="macro", zero_division=0),
        "f1_micro": skm.f1_score(y, pred, average="micro", zero_division=0),
        "accuracy": skm.accuracy_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, p, average="macro"),
        "average_precision": skm.average_precision_score(y, p, average="macro"),
        "log_loss": np.mean([skm.log_loss(y[:, k], p[:, k]) for k in range(6)]),
    }
    for name, value in expected.items():
        metric = get_metric(name, "multi_label")
        assert metric(y, p) == pytest.approx(value, abs=1e-12), name
        if metric.fast is not None:  # the threshold search's numpy twin agrees with sklearn
            assert metric.fast(y, pred) == pytest.approx(value, abs=1e-12), name
    assert not get_metric("log_loss", "multi_label").greater_is_better
    assert score_all(y, p, task="multi_label").keys() >= {"f2_samples", "roc_auc", "log_loss"}


def test_multilabel_auc_skips_a_label_absent_from_the_rows(multilabel_example) -> None:
    y, p = multilabel_example
    y = y.copy()
    y[:, 0] = 0
    expected = np.mean([skm.roc_auc_score(y[:, k], p[:, k]) for k in range(1, 6)])
    assert get_metric("roc_auc", "multi_label")(y, p) == pytest.approx(expected)


def test_ordinal_and_regression_metrics_match_sklearn_and_know_their_direction() -> None:
    from sklearn.metrics import cohen_kappa_score, mean_absolute_error

    from imgclf.metrics import greater_is_better, metrics_for

    y = np.array([0, 0, 1, 2, 4, 3, 2, 0])
    pred = np.array([0.2, 0.7, 1.4, 2.0, 3.2, 3.6, 1.5, 0.1])  # continuous: the grade metrics round
    rounded = np.array([0, 1, 1, 2, 3, 4, 2, 0])
    table = metrics_for("ordinal")
    assert table["qwk"](y, pred) == pytest.approx(cohen_kappa_score(y, rounded, weights="quadratic"))
    linear = cohen_kappa_score(y, rounded, weights="linear")
    assert table["linear_kappa"](y, pred[:, None]) == pytest.approx(linear)
    assert table["mae"](y, pred) == pytest.approx(mean_absolute_error(y, pred))
    assert table["rmse"](y, pred) == pytest.approx(np.sqrt(np.mean((y - pred) ** 2)))
    assert greater_is_better("qwk") and not greater_is_better("rmse") and not greater_is_better("mae")
    assert set(metrics_for("regression")) == {"rmse", "mae"}


def test_many_classes_in_a_small_fold_raise_no_regression_warning():
    """A validation fold of 30 images over 24 classes: sklearn guesses a regression and warns on every
    epoch's scores; the metrics keep that out of the training log."""
    labels = np.arange(30) % 24
    probs = np.eye(24)[labels]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_metric("f1_macro")(labels, probs) == 1.0
        assert get_metric("balanced_accuracy")(labels, probs) == 1.0
