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

import pandas as pd

log = logging.getLogger(__name__)

SubmissionKind = Literal["label", "proba", "binary_proba", "mask"]


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
