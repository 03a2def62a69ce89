"""Multi-label folds: iterative stratification keeps every label in every fold; groups never split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.data.folds import make_folds, read_folds
from tests.helpers.datasets import load_fixture
from tests.helpers.multilabel import LABELS, make_multilabel_dataset


def test_every_label_in_every_fold_and_folds_csv_keeps_the_tags(tmp_path: Path, fast_cfg) -> None:
    # label 5 is rare (about 8 % of 60 images): still at least n_splits images, so in every fold
    data = make_multilabel_dataset(tmp_path / "planet", n_train=60, n_test=3, rare=(5,))
    comp, paths = load_fixture(fast_cfg, data, "metric=f2_samples", "folds.n_splits=4")
    frame = make_folds(fast_cfg(data, "metric=f2_samples", "folds.n_splits=4"), paths, comp)
    counts = comp.labels.sum(axis=0)
    assert counts.min() >= 4
    for k in range(4):
        in_fold = comp.labels[frame["fold"].to_numpy() == k]
        assert (in_fold.sum(axis=0) > 0).all(), (k, in_fold.sum(axis=0))
    # per-label counts per fold near the ideal share; the rare label's within one image of it
    per_fold = np.stack([comp.labels[frame["fold"].to_numpy() == k].sum(axis=0) for k in range(4)])
    assert (np.abs(per_fold - counts / 4) <= 3).all(), per_fold
    assert (np.abs(per_fold[:, 5] - counts[5] / 4) <= 1).all(), per_fold
    written = pd.read_csv(paths.folds_csv, dtype=str)
    assert list(written.columns) == ["image_name", "tags", "fold"]
    assert written["tags"].tolist() == pd.read_csv(data / "train.csv")["tags"].tolist()
    assert (read_folds(paths, comp) == frame["fold"].to_numpy()).all()


def test_grouped_multilabel_folds_never_split_a_group(tmp_path: Path, fast_cfg) -> None:
    data = make_multilabel_dataset(tmp_path / "ranzcr", layout="columns", n_train=90, n_test=3, groups=True)
    overrides = ("metric=roc_auc", "data.group_column=PatientID", "folds.n_splits=3")
    comp, paths = load_fixture(fast_cfg, data, *overrides)
    frame = make_folds(fast_cfg(data, *overrides), paths, comp)
    groups = pd.read_csv(data / "train.csv")["PatientID"]
    assert (frame.groupby(groups)["fold"].nunique() == 1).all()  # no group in two folds
    assert list(frame.columns) == ["StudyInstanceUID", *LABELS, "group", "fold"]
    for k in range(3):  # 30 groups of 3 images: every label (30+ images) reaches every fold
        assert (comp.labels[frame["fold"].to_numpy() == k].sum(axis=0) > 0).all()
    sizes = frame["fold"].value_counts()
    assert sizes.max() - sizes.min() <= 9  # balanced up to a few groups
