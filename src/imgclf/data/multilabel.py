"""Multi-label targets of the Kaggle CSV layout, and the ``task`` decision.

Two layouts hold several labels an image: one column of space-separated tags (``haze primary
water``), or one 0/1 column per label (the target columns of sample_submission.csv, all present in
train.csv). ``task: auto`` calls a competition multi-label when at least ``MIN_MULTI_ROWS`` rows hold
more than one label: a single-label table never has such rows, and one stray row is more likely a
typo than a multi-label competition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import SubmissionKind, Task
from imgclf.errors import ConfigError, DataError
from imgclf.metrics import metrics_for

log = logging.getLogger(__name__)

MIN_MULTI_ROWS = 2


@dataclass
class MultiLabelTargets:
    labels: list[str]  # the vocabulary, in submission column order (tags: sorted)
    matrix: np.ndarray  # [n_train, n_labels] 0/1
    columns: list[str]  # train.csv's target column(s), as folds.csv repeats them
    kind: SubmissionKind


def decide_task(cfg: Config, multi_rows: int, n_rows: int, where: str) -> Task:
    """The task the config asks for, or (auto) the one the data shows; logs one line saying why."""
    if cfg.task == "single_label":
        return "single_label"
    if cfg.task == "multi_label":
        log.info("task: multi_label (set in the config); %d of %d rows of %s hold several labels",
                 multi_rows, n_rows, where)
        return "multi_label"
    if multi_rows >= MIN_MULTI_ROWS:
        log.info("task auto -> multi_label: %d of %d rows of %s hold several labels (set task=single_label "
                 "if a label itself contains spaces)", multi_rows, n_rows, where)
        return "multi_label"
    return "single_label"


def check_metric_for_task(cfg: Config, task: Task) -> None:
    if cfg.metric not in metrics_for(task):
        names = ", ".join(sorted(metrics_for(task)))
        raise ConfigError(f"metric: '{cfg.metric}' is not a {task.replace('_', '-')} metric (known: {names})")


def split_tags(values: pd.Series) -> list[list[str]]:
    return [str(v).split() if isinstance(v, str) else [] for v in values]


def multi_rows_of_tags(values: pd.Series) -> int:
    return sum(len(set(t)) > 1 for t in split_tags(values))


def multi_rows_of_columns(frame: pd.DataFrame, columns: list[str]) -> int:
    numbers = frame[columns].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy()
    return int(((numbers != 0).sum(axis=1) > 1).sum())


def tags_targets(frame: pd.DataFrame, column: str, id_column: str, csv: Path, sample_csv: Path,
                 vocabulary: list[str] | None) -> MultiLabelTargets:
    """A column of space-separated tags; ``vocabulary``: sample_submission's label columns (else the
    sorted tags of train.csv, and the submission holds tags in the same column)."""
    tags = split_tags(frame[column])
    empty = [n for n, t in enumerate(tags) if not t]
    if empty:
        row = empty[0]
        raise DataError(f"{csv} column '{column}': {len(empty)} empty tag string(s), first at row {row + 2} "
                        f"(id '{frame[id_column].iloc[row]}'); every image needs at least one label (give "
                        "images without one an explicit label such as 'none')")
    found = sorted({t for row in tags for t in row})
    if vocabulary is not None:
        unknown = [t for t in found if t not in vocabulary]
        if unknown:
            raise DataError(f"{csv} column '{column}': label(s) {unknown[:5]} are not columns of "
                            f"{sample_csv.name}")
    labels = vocabulary if vocabulary is not None else found
    index = {t: k for k, t in enumerate(labels)}
    matrix = np.zeros((len(tags), len(labels)), dtype=np.int64)
    for n, row_tags in enumerate(tags):
        matrix[n, [index[t] for t in row_tags]] = 1
    kind: SubmissionKind = "multi_proba" if vocabulary is not None else "tags"
    return MultiLabelTargets(labels, matrix, [column], kind)


def column_targets(frame: pd.DataFrame, columns: list[str], id_column: str, csv: Path) -> MultiLabelTargets:
    """One 0/1 column per label; anything else in them is an error naming the column and row."""
    for column in columns:
        values = frame[column]
        bad = ~values.astype(str).str.strip().isin(["0", "1", "0.0", "1.0"])
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise DataError(f"{csv} column '{column}': value {values.iloc[row]!r} at row {row + 2} "
                            f"(id '{frame[id_column].iloc[row]}') is not 0 or 1; a multi-label column "
                            "holds 0/1")
    matrix = frame[columns].astype(float).astype(np.int64).to_numpy()
    return MultiLabelTargets(list(columns), matrix, list(columns), "multi_proba")


def read_group_column(cfg: Config, frame: pd.DataFrame, csv: Path) -> str | None:
    """``data.group_column`` (which must exist and be filled), else a column named ``group``."""
    name = cfg.data.group_column
    if name is None:
        return "group" if "group" in frame.columns else None
    if name not in frame.columns:
        raise DataError(f"data.group_column: column '{name}' not found in {csv} "
                        f"(columns: {list(frame.columns)})")
    empty = frame[name].isna()
    if empty.any():
        raise DataError(f"{csv} column '{name}': empty group at row {int(np.argmax(empty.to_numpy())) + 2}")
    return name
