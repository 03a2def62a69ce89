"""A competition, whatever its layout, as one table shape.

``Competition.train`` has columns ``id``, ``path``, ``label`` (class index) and ``group`` (person,
patient... or absent); ``Competition.test`` has ``id`` and ``path`` in submission order. Everything
the data folder leaves open (id/target columns, image folders and extensions) is guessed from
``sample_submission.csv`` and the files, and every guess can be overridden in ``data.*``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# Multi-label: "tags" = space-separated labels in one column, "multi_proba" = a probability per label column.
# Ordinal: an integer grade in train.csv's vocabulary; regression: a number.
SubmissionKind = Literal["label", "proba", "binary_proba", "mask", "tags", "multi_proba", "grade", "value"]
Task = Literal["single_label", "multi_label", "ordinal", "regression"]
PREDICTION = "prediction"  # oof.csv/test.csv's one column of an ordinal or regression model


@dataclass
class Competition:
    name: str
    data_dir: Path
    layout: str
    train: pd.DataFrame
    test: pd.DataFrame
    class_values: list  # label values in class-index order, as the data spells them (int or str)
    id_column: str
    target_columns: list[str]
    submission_kind: SubmissionKind
    # The train ids and targets under the data's own column names: what folds.csv repeats and the
    # data fingerprint hashes.
    train_targets: pd.DataFrame
    sample_submission: pd.DataFrame | None = None
    group_column: str | None = None
    # Extra categorical columns of ``train`` worth profiling in the EDA (the mask layout's attributes).
    attributes: list[str] = field(default_factory=list)
    task: Task = "single_label"
    # Multi-label: the 0/1 matrix [n_train, n_labels] in ``train`` row order and ``classes`` column
    # order (``train["label"]`` then holds each row's first label, for the views that want one).
    # Regression: the real-valued targets [n_train] (``train["label"]`` then holds their quantile bin,
    # what the folds stratify on and the EDA counts; ``class_values`` names the bins).
    targets: np.ndarray | None = None

    @property
    def multi_label(self) -> bool:
        return self.task == "multi_label"

    @property
    def continuous(self) -> bool:
        """Ordinal or regression: the models predict one number an image (a grade index or a value)."""
        return self.task in ("ordinal", "regression")

    @property
    def output_columns(self) -> list[str]:
        """The prediction columns of oof.csv and test.csv."""
        return [PREDICTION] if self.continuous else self.classes

    @property
    def labels(self) -> np.ndarray:
        """What the metrics score: class (grade) indices [n], the 0/1 label matrix [n, L] when
        multi-label, the real-valued targets [n] for regression."""
        if self.multi_label or self.task == "regression":
            assert self.targets is not None
            return self.targets
        return self.train["label"].to_numpy()

    def labels_of(self, ids: pd.Series) -> np.ndarray:
        """``labels`` of the given train ids, in their order."""
        row = {i: n for n, i in enumerate(self.train["id"].astype(str))}
        return self.labels[np.array([row[i] for i in ids.astype(str)], dtype=int)]

    @property
    def classes(self) -> list[str]:
        """Class names as strings: the probability column names of oof.csv and test.csv."""
        return [str(v) for v in self.class_values]

    @property
    def num_classes(self) -> int:
        return len(self.class_values)

    @property
    def has_groups(self) -> bool:
        return "group" in self.train.columns
