"""Multi-label ensembling, submissions in both layouts and the local scorer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.ensemble import multilabel as ml
from imgclf.ensemble.scoring import score_submission
from imgclf.ensemble.submission import build_submission, validate_submission
from imgclf.errors import DataError
from imgclf.metrics import get_metric
from tests.helpers.datasets import load_fixture
from tests.helpers.multilabel import make_multilabel_dataset


@pytest.fixture
def two_models() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = (rng.random((80, 6)) < 0.3).astype(int)
    oofs = np.stack([1 / (1 + np.exp(-(rng.normal(size=(80, 6)) + 2 * (2 * labels - 1)))) for _ in range(2)])
    return labels, oofs, np.arange(80) % 4


def test_one_model_maps_to_itself_and_majority_votes_per_label(two_models) -> None:
    labels, oofs, folds = two_models
    one = oofs[:1]
    for fn in (ml.soft, ml.geometric, ml.rank):
        np.testing.assert_allclose(fn(one), one[0], atol=1e-9)
    votes = np.array([[[0.9, 0.2]], [[0.6, 0.4]], [[0.1, 0.7]]])  # 3 models, 1 row, 2 labels
    assert (ml.hard(votes) >= 0.5).tolist() == [[True, False]]  # 2 of 3 say label 0; 1 of 3 label 1


def test_every_method_and_honest_scores(two_models) -> None:
    labels, oofs, folds = two_models
    metric = get_metric("f2_samples", "multi_label")
    blends = ml.run_methods(oofs, oofs[:, :10], labels, folds, metric)
    assert set(blends) == {"soft", "geometric", "hard", "rank", "weighted", "weighted_nested", "stacking"}
    for blend in blends.values():
        assert blend.oof.shape == (80, 6) and blend.test.shape == (10, 6)
        assert ((blend.oof >= 0) & (blend.oof <= 1)).all()
    assert sum(blends["weighted"].info["weights"]) == pytest.approx(1.0)
    soft = ml.honest_score(labels, blends["soft"].oof, folds, metric)
    assert soft > metric(labels, np.ones_like(labels))  # far above predicting every label
    auc = get_metric("roc_auc", "multi_label")
    rank = blends["rank"].oof
    assert ml.honest_score(labels, rank, folds, auc) == pytest.approx(auc(labels, rank))


def test_stacking_predicts_each_fold_from_the_others(two_models) -> None:
    labels, oofs, folds = two_models
    oof, _ = ml.stacking(oofs, oofs, labels, folds)
    flipped = labels.copy()
    flipped[folds == 0] = 1 - flipped[folds == 0]
    again, _ = ml.stacking(oofs, oofs, flipped, folds)
    np.testing.assert_allclose(oof[folds == 0], again[folds == 0])


def test_tags_and_probability_submissions(tmp_path: Path, fast_cfg) -> None:
    tags = make_multilabel_dataset(tmp_path / "planet", n_train=20, n_test=4)
    comp, _ = load_fixture(fast_cfg, tags, "metric=f2_samples")
    probs = np.array([[0.9, 0.1, 0.6, 0.2, 0.1, 0.1], [0.1] * 6, [0.3, 0.8, 0.1, 0.1, 0.1, 0.9], [0.5] * 6])
    sub = build_submission(comp, probs, (np.full(6, 0.5), True))
    assert list(sub.columns) == ["image_name", "tags"]
    assert sub["tags"].tolist() == ["agriculture haze", "agriculture", "clear water", " ".join(comp.classes)]
    validate_submission(sub, comp)
    bad = sub.assign(tags=["agriculture cloudy", "clear", "clear", "clear"])
    with pytest.raises(DataError, match=r"label \['cloudy'\] in column 'tags' at id 'te_0000'"):
        validate_submission(bad, comp)
    columns = make_multilabel_dataset(tmp_path / "ranzcr", layout="columns", n_train=20, n_test=4)
    comp, _ = load_fixture(fast_cfg, columns, "metric=roc_auc")
    sub = build_submission(comp, probs)
    assert list(sub.columns) == list(pd.read_csv(columns / "sample_submission.csv").columns)
    np.testing.assert_allclose(sub[comp.classes].to_numpy(), probs)
    validate_submission(sub, comp)  # rows need not sum to one
    with pytest.raises(DataError, match=r"outside \[0, 1\]"):
        validate_submission(sub.assign(road=1.5), comp)


def test_the_local_scorer_reads_tags_and_label_columns(tmp_path: Path) -> None:
    tags = make_multilabel_dataset(tmp_path / "planet", n_train=6, n_test=8)
    solution = pd.read_csv(tags / "solution.csv")
    assert score_submission(tags / "solution.csv", tags / "solution.csv", "f2_samples") == 1.0
    half = solution.assign(tags=[t.split()[0] for t in solution["tags"]])
    half.loc[0, "tags"] = np.nan  # an image given no label
    half.to_csv(tmp_path / "half.csv", index=False)
    truth = np.array([len(t.split()) for t in solution["tags"]])
    expected = np.mean([0.0] + [5 * (1 / n) / (4 * 1 + 1 / n) for n in truth[1:]])  # P=1, R=1/n
    score = score_submission(tmp_path / "half.csv", tags / "solution.csv", "f2_samples")
    assert score == pytest.approx(expected)
    columns = make_multilabel_dataset(tmp_path / "ranzcr", layout="columns", n_train=6, n_test=40)
    assert score_submission(columns / "solution.csv", columns / "solution.csv", "roc_auc") == 1.0
    sample = columns / "sample_submission.csv"  # 0.5 everywhere: chance
    assert score_submission(sample, columns / "solution.csv", "roc_auc") == pytest.approx(0.5)
