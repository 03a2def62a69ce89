"""Fold assignment: every id once, stratified, grouped when the data has groups, deterministic."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imgclf.data.folds import assign_folds, make_folds, read_folds
from imgclf.data.ingest import load_competition
from imgclf.errors import DataError
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import paths_of, run_script


def _folds(fast_cfg, root: Path, *overrides: str) -> tuple[pd.DataFrame, object, object]:
    cfg = fast_cfg(root, *overrides)
    paths = paths_of(cfg)
    comp = load_competition(cfg, paths)
    make_folds(cfg, paths, comp)
    return pd.read_csv(paths.folds_csv, dtype={"image_id": str}), comp, paths


def test_stratified_folds_cover_every_id_once_and_balance_classes(tmp_path: Path, fast_cfg) -> None:
    # 3 classes of 24/23/23 images into 5 folds: ideal per-class counts 4.8 and 4.6.
    root = make_kaggle_dataset(tmp_path / "shapes", n_train=70, n_test=3)
    frame, comp, paths = _folds(fast_cfg, root, "folds.n_splits=5")
    train = pd.read_csv(root / "train.csv", dtype=str)

    assert list(frame.columns) == ["image_id", "label", "fold"]  # the data's own column names
    assert sorted(frame["image_id"]) == sorted(train["image_id"]) and frame["image_id"].is_unique
    assert frame.set_index("image_id")["label"].to_dict() == train.set_index("image_id")["label"].to_dict()
    assert set(frame["fold"]) == set(range(5))
    for label, per_fold in frame.groupby("label")["fold"].value_counts().unstack(fill_value=0).iterrows():
        ideal = (train["label"] == label).sum() / 5
        assert (abs(per_fold - ideal) < 1).all(), (label, per_fold.tolist())
    assert (read_folds(paths, comp) == frame["fold"].to_numpy()).all()


def test_groups_never_span_two_folds(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "grouped", n_train=90, n_test=3, groups=True)
    frame, _, _ = _folds(fast_cfg, root, "folds.n_splits=3")
    assert list(frame.columns) == ["image_id", "label", "group", "fold"]
    assert frame.groupby("group")["fold"].nunique().max() == 1
    assert frame["group"].nunique() == 30 and set(frame["fold"]) == {0, 1, 2}
    sizes = frame.groupby("fold").size()
    assert sizes.max() - sizes.min() <= 3  # one group of 3 images at most between folds


def test_folds_are_deterministic_given_the_seed(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "shapes", n_train=60, n_test=3)
    cfg = fast_cfg(root, "folds.n_splits=4")
    comp = load_competition(cfg, paths_of(cfg))
    first = assign_folds(comp, 4, seed=1)
    assert (assign_folds(comp, 4, seed=1) == first).all()
    assert (assign_folds(comp, 4, seed=2) != first).any()


def test_folds_csv_of_other_data_is_refused(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "shapes", n_train=30, n_test=3)
    frame, comp, paths = _folds(fast_cfg, root)
    frame.iloc[1:].to_csv(paths.folds_csv, index=False)
    with pytest.raises(DataError, match="folds.csv was made for different data"):
        read_folds(paths, comp)


def test_too_many_splits_are_data_errors(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "grouped", n_train=6, n_test=3, groups=True)
    cfg = fast_cfg(root)
    comp = load_competition(cfg, paths_of(cfg))
    with pytest.raises(DataError, match="folds.n_splits=3 but the data has only 2 groups"):
        assign_folds(comp, 3, seed=0)
    comp.train = comp.train.drop(columns="group")
    with pytest.raises(DataError, match="folds.n_splits=3 but no class has that many train images"):
        assign_folds(comp, 3, seed=0)


def test_folds_script_on_a_kaggle_folder(kaggle_dir: Path, tmp_path: Path) -> None:
    result = run_script("pipelines/02_folds.py", "--data", str(kaggle_dir), "--set", "folds.n_splits=3",
                        root=tmp_path / "project")
    assert result.returncode == 0, result.stderr
    comp_dir = tmp_path / "project" / "models" / kaggle_dir.name
    frame = pd.read_csv(comp_dir / "folds.csv", dtype=str)
    assert len(frame) == 60 and frame["fold"].value_counts().to_dict() == {"0": 20, "1": 20, "2": 20}
    assert "n_splits: 3" in (comp_dir / "folds_config.yaml").read_text()


def test_single_label_groups_by_a_named_column(tmp_path: Path, fast_cfg) -> None:
    """data.group_column names the group column (here PatientID); the folds never split a patient."""
    root = make_kaggle_dataset(tmp_path / "shapes", n_train=60, n_test=3, groups=True)
    train = pd.read_csv(root / "train.csv", dtype=str).rename(columns={"group": "PatientID"})
    train.to_csv(root / "train.csv", index=False)
    frame, comp, _ = _folds(fast_cfg, root, "folds.n_splits=3", "data.group_column=PatientID")
    assert comp.has_groups and list(frame.columns) == ["image_id", "label", "group", "fold"]
    assert (frame.groupby(train["PatientID"])["fold"].nunique() == 1).all()
    _, ungrouped, _ = _folds(fast_cfg, root, "folds.n_splits=3")  # without the key: no groups
    assert not ungrouped.has_groups
