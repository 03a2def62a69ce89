"""Multi-label ingest: both layouts, the task decision and its log line, groups by name, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.errors import ConfigError, DataError
from tests.helpers.datasets import load_fixture
from tests.helpers.multilabel import LABELS, make_multilabel_dataset


def test_tags_layout_is_detected_and_read_as_a_label_matrix(tmp_path: Path, fast_cfg, caplog) -> None:
    data = make_multilabel_dataset(tmp_path / "planet", n_train=30, n_test=4)
    with caplog.at_level(logging.INFO, logger="imgclf.data.multilabel"):
        comp, _ = load_fixture(fast_cfg, data, "metric=f2_samples")
    assert comp.task == "multi_label" and comp.submission_kind == "tags"
    assert comp.classes == sorted(LABELS)
    train = pd.read_csv(data / "train.csv")
    for row, tags in enumerate(train["tags"]):
        assert {comp.classes[k] for k in np.flatnonzero(comp.labels[row])} == set(tags.split())
    assert comp.labels.sum(axis=1).min() >= 1 and comp.labels.sum(axis=1).max() <= 3
    decisions = [r.getMessage() for r in caplog.records if "task auto -> multi_label" in r.getMessage()]
    assert len(decisions) == 1 and "rows of train.csv hold several labels" in decisions[0]
    assert list(comp.train_targets.columns) == ["image_name", "tags"]


def test_column_layout_with_a_named_group_column(tmp_path: Path, fast_cfg) -> None:
    data = make_multilabel_dataset(tmp_path / "ranzcr", layout="columns", n_train=30, n_test=4, groups=True)
    comp, _ = load_fixture(fast_cfg, data, "metric=roc_auc", "data.group_column=PatientID")
    train = pd.read_csv(data / "train.csv")
    assert comp.task == "multi_label" and comp.submission_kind == "multi_proba"
    assert comp.classes == list(LABELS)  # sample_submission's column order
    np.testing.assert_array_equal(comp.labels, train[list(LABELS)].to_numpy())
    assert (comp.train["group"] == train["PatientID"]).all()


def test_task_single_label_keeps_tags_as_classes_and_one_hot_stays_single_label(tmp_path: Path,
                                                                                 fast_cfg) -> None:
    data = make_multilabel_dataset(tmp_path / "planet", n_train=30, n_test=4)
    comp, _ = load_fixture(fast_cfg, data, "task=single_label")
    assert comp.task == "single_label" and comp.num_classes > 6 and any(" " in c for c in comp.classes)
    onehot = make_multilabel_dataset(tmp_path / "onehot", layout="columns", n_train=30, n_test=4)
    train = pd.read_csv(onehot / "train.csv")
    train[list(LABELS)] = np.eye(6, dtype=int)[np.arange(30) % 6]  # exactly one 1 a row
    train.to_csv(onehot / "train.csv", index=False)
    comp, _ = load_fixture(fast_cfg, onehot)
    assert comp.task == "single_label" and comp.submission_kind == "proba"


def test_forced_multi_label_on_one_hot_rows(tmp_path: Path, fast_cfg) -> None:
    data = make_multilabel_dataset(tmp_path / "onehot", layout="columns", n_train=30, n_test=4)
    train = pd.read_csv(data / "train.csv")
    train[list(LABELS)] = np.eye(6, dtype=int)[np.arange(30) % 6]
    train.to_csv(data / "train.csv", index=False)
    comp, _ = load_fixture(fast_cfg, data, "task=multi_label", "metric=f1_macro")
    assert comp.task == "multi_label"


def _edit(data: Path, edit) -> None:
    train = pd.read_csv(data / "train.csv", dtype=str, keep_default_na=False)
    edit(train)
    train.to_csv(data / "train.csv", index=False)


@pytest.mark.parametrize(("layout", "edit", "overrides", "error", "message"), [
    ("columns", lambda t: t.__setitem__("road", ["2"] + list(t["road"][1:])), (), DataError,
     "column 'road': value '2' at row 2 (id 'tr_0000') is not 0 or 1"),
    ("tags", lambda t: t.__setitem__("tags", [""] + list(t["tags"][1:])), (), DataError,
     "column 'tags': 1 empty tag string(s), first at row 2 (id 'tr_0000')"),
    ("tags", None, ("metric=balanced_accuracy",), ConfigError,
     "metric: 'balanced_accuracy' is not a multi-label metric"),
    ("tags", None, ("task=ordinal",), DataError, "is not an integer grade"),
    ("columns", None, ("data.group_column=Patient",), DataError,
     "data.group_column: column 'Patient' not found"),
])
def test_bad_multilabel_input_names_the_culprit(tmp_path: Path, fast_cfg, layout, edit, overrides, error,
                                                message) -> None:
    data = make_multilabel_dataset(tmp_path / "comp", layout=layout, n_train=20, n_test=3, groups=True)
    if edit is not None:
        _edit(data, edit)
    with pytest.raises(error, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_fixture(fast_cfg, data, "metric=f1_samples", *overrides)


def test_a_tag_that_is_no_column_of_the_sample_submission(tmp_path: Path, fast_cfg) -> None:
    """Tags in train.csv, one probability column per label in the submission: its columns are the
    vocabulary."""
    data = make_multilabel_dataset(tmp_path / "hpa", n_train=20, n_test=3)
    sample = pd.read_csv(data / "sample_submission.csv")
    labels = sorted(LABELS)
    pd.DataFrame({"image_name": sample["image_name"], **{k: 0.5 for k in labels}}).to_csv(
        data / "sample_submission.csv", index=False)
    comp, _ = load_fixture(fast_cfg, data, "metric=f1_macro")
    assert comp.submission_kind == "multi_proba" and comp.classes == labels
    pd.DataFrame({"image_name": sample["image_name"], **{k: 0.5 for k in labels[1:]}}).to_csv(
        data / "sample_submission.csv", index=False)
    with pytest.raises(DataError, match=r"label\(s\) \['agriculture'\] are not columns of sample_submission"):
        load_fixture(fast_cfg, data, "metric=f1_macro")
