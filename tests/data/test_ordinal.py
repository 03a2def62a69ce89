"""Ordinal and regression targets of the Kaggle CSV layout: the task decision, grades, values, folds,
and bad input named."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.data.folds import assign_folds
from imgclf.errors import ConfigError, DataError
from tests.helpers.datasets import load_fixture
from tests.helpers.ordinal import make_ordinal_dataset


def test_qwk_implies_ordinal_and_says_so(tmp_path: Path, fast_cfg, caplog) -> None:
    data = make_ordinal_dataset(tmp_path / "aptos", n_train=60, n_test=4)
    with caplog.at_level(logging.INFO):
        comp, _ = load_fixture(fast_cfg, data, "metric=qwk")
    assert "task auto -> ordinal: metric qwk" in caplog.text
    assert comp.task == "ordinal" and comp.class_values == [0, 1, 2, 3, 4]
    assert comp.output_columns == ["prediction"] and comp.submission_kind == "grade"
    truth = pd.read_csv(data / "train.csv")["diagnosis"].to_numpy()
    assert np.array_equal(comp.labels, truth)
    plain, _ = load_fixture(fast_cfg, data, "metric=accuracy")  # no qwk: unordered classes, as before
    assert plain.task == "single_label"


def test_grades_with_a_gap_are_predicted_on_their_index(tmp_path: Path, fast_cfg) -> None:
    data = make_ordinal_dataset(tmp_path / "g", n_train=40, n_test=4)
    train = pd.read_csv(data / "train.csv")
    train["diagnosis"] = train["diagnosis"].replace({4: 7})
    train.to_csv(data / "train.csv", index=False)
    comp, _ = load_fixture(fast_cfg, data, "task=ordinal", "metric=qwk")
    assert comp.class_values == [0, 1, 2, 3, 7] and comp.labels.max() == 4


def test_regression_targets_and_binned_folds(tmp_path: Path, fast_cfg) -> None:
    data = make_ordinal_dataset(tmp_path / "paw", n_train=60, n_test=4, task="regression", groups=True)
    comp, _ = load_fixture(fast_cfg, data, "metric=rmse", "data.group_column=PatientID")
    assert comp.task == "regression" and comp.submission_kind == "value"
    assert np.allclose(comp.labels, pd.read_csv(data / "train.csv")["Pawpularity"])
    folds = assign_folds(comp, 2, 0)
    bins = comp.train["label"].to_numpy()
    assert len(comp.classes) == 5 and np.bincount(bins).min() >= 10  # quantile bins
    for b in range(5):  # each bin split about evenly across the folds
        assert abs((folds[bins == b] == 0).mean() - 0.5) < 0.3
    groups = comp.train["group"].to_numpy()
    assert all(len(set(folds[groups == g])) == 1 for g in set(groups))


@pytest.mark.parametrize(("value", "overrides", "error", "message"), [
    ("2.5", ("metric=qwk",), DataError, "column 'diagnosis': value '2.5' at row 2 (id 'tr0000') is not an "
     "integer grade"),
    ("bad", ("metric=rmse",), DataError, "column 'diagnosis': value 'bad' at row 2 (id 'tr0000') is not a "
     "finite number"),
    (None, ("task=regression",), ConfigError, "metric: 'accuracy' is not a regression metric"),
])
def test_bad_ordinal_input_names_the_culprit(tmp_path: Path, fast_cfg, value, overrides, error,
                                            message) -> None:
    data = make_ordinal_dataset(tmp_path / "bad", n_train=20, n_test=3)
    if value is not None:
        train = pd.read_csv(data / "train.csv", dtype=str)
        train.loc[0, "diagnosis"] = value
        train.to_csv(data / "train.csv", index=False)
    with pytest.raises(error, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_fixture(fast_cfg, data, *overrides)
