"""Ordinal grades and regression targets of the Kaggle CSV layout, and their part of the ``task`` decision.

Both hold one target column. ``task: auto`` takes the metric's word for it: ``qwk`` and
``linear_kappa`` score ordered grades (ordinal), ``rmse`` and ``mae`` real values (regression); any
other metric keeps the classification decision. An ordinal target holds integer grades; the grade
index (0.. in sorted order of the grades train.csv holds) is what the models predict, so a
vocabulary with gaps (0, 1, 3) is predicted on 0, 1, 2 and written back as 0, 1, 3.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import SubmissionKind, Task
from imgclf.errors import DataError
from imgclf.metrics import ORDINAL_IMPLIED, REGRESSION_IMPLIED

log = logging.getLogger(__name__)

STRATA = 5  # quantile bins of a regression target: what its folds stratify on


@dataclass
class ContinuousTargets:
    class_values: list  # ordinal: the grades, sorted; regression: the names of the quantile bins
    label_index: np.ndarray  # grade index, or quantile bin
    columns: list[str]
    kind: SubmissionKind
    values: np.ndarray | None  # regression: the real-valued targets


def continuous_task(cfg: Config, where: str) -> Task | None:
    """``ordinal`` / ``regression`` when the config asks for it or (auto) its metric implies it;
    None leaves the decision to the classification readers. Logs one line saying why."""
    if cfg.task in ("ordinal", "regression"):
        log.info("task: %s (set in the config)", cfg.task)
        return cfg.task
    if cfg.task != "auto":
        return None
    if cfg.metric in ORDINAL_IMPLIED:
        log.info("task auto -> ordinal: metric %s scores ordered integer grades of %s (set task=single_label "
                 "to treat them as unordered classes)", cfg.metric, where)
        return "ordinal"
    if cfg.metric in REGRESSION_IMPLIED:
        log.info("task auto -> regression: metric %s scores real-valued targets of %s", cfg.metric, where)
        return "regression"
    return None


def _numbers(frame: pd.DataFrame, column: str, id_column: str, csv: Path, what: str) -> np.ndarray:
    text = frame[column].astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{csv} column '{column}': value {frame[column].iloc[row]!r} at row {row + 2} "
                        f"(id '{frame[id_column].iloc[row]}') is not {what}")
    return values


def ordinal_targets(frame: pd.DataFrame, column: str, id_column: str, csv: Path) -> ContinuousTargets:
    values = _numbers(frame, column, id_column, csv, "an integer grade")
    fractional = values != np.round(values)
    if fractional.any():
        row = int(np.argmax(fractional))
        raise DataError(f"{csv} column '{column}': value {frame[column].iloc[row]!r} at row {row + 2} "
                        f"(id '{frame[id_column].iloc[row]}') is not an integer grade (task ordinal; a "
                        "real-valued target is task=regression)")
    grades = values.astype(int)
    vocabulary = sorted(set(grades.tolist()))
    if len(vocabulary) < 2:
        raise DataError(f"{csv} column '{column}': one grade only ({vocabulary}); nothing to learn")
    gaps = sorted(set(range(vocabulary[0], vocabulary[-1] + 1)) - set(vocabulary))
    if gaps:
        log.warning("%s column '%s': grade(s) %s never occur; the models predict the %d grades that do",
                    csv.name, column, gaps[:10], len(vocabulary))
    index = np.searchsorted(vocabulary, grades)
    return ContinuousTargets(vocabulary, index, [column], "grade", None)


def regression_targets(frame: pd.DataFrame, column: str, id_column: str, csv: Path) -> ContinuousTargets:
    values = _numbers(frame, column, id_column, csv, "a finite number (task regression)")
    if np.ptp(values) == 0:
        raise DataError(f"{csv} column '{column}': every target is {values[0]}; nothing to learn")
    bins = pd.qcut(values, q=min(STRATA, len(np.unique(values))), duplicates="drop")
    names = [f"{iv.left:.4g}..{iv.right:.4g}" for iv in bins.categories]
    return ContinuousTargets(names, np.asarray(bins.codes, dtype=int), [column], "value", values)


def read_continuous(task: Task, frame: pd.DataFrame, target: str | None, id_column: str, csv: Path,
                    sample_targets: list[str]) -> ContinuousTargets:
    """The one target column (``data.target_column``, or sample_submission's one target column)."""
    if target is None:
        raise DataError(f"task {task} needs one target column; sample_submission has {sample_targets} "
                        "(set data.target_column)")
    if target not in frame.columns:
        raise DataError(f"{csv}: target column '{target}' not found (columns: {list(frame.columns)})")
    read = ordinal_targets if task == "ordinal" else regression_targets
    return read(frame, target, id_column, csv)
