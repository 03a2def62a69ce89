"""The Kaggle CSV layout: train.csv, sample_submission.csv and the train/test image folders.

The id column is sample_submission's first column (or ``data.id_column``); the targets are its other
columns: one column of labels, one probability column per class with labels in train.csv, or
one-hot class columns in train.csv.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import Competition, SubmissionKind
from imgclf.data.multilabel import (
    MultiLabelTargets,
    column_targets,
    decide_task,
    multi_rows_of_columns,
    multi_rows_of_tags,
    read_group_column,
    tags_targets,
)
from imgclf.data.ordinal import continuous_task, read_continuous
from imgclf.data.tables import (
    check_labels,
    check_unique_ids,
    coerce_like,
    read_csv_strings,
    resolve_image_paths,
    sort_class_values,
)
from imgclf.errors import DataError

log = logging.getLogger(__name__)

TRAIN_DIRS = ("train", "train_images", "images/train")
TEST_DIRS = ("test", "test_images", "images/test")


@dataclass
class _Targets:
    """What train.csv's targets are: the class vocabulary, each row's class index, the columns."""

    class_values: list
    label_index: np.ndarray
    columns: list[str]
    kind: SubmissionKind


def load_kaggle_csv(data_dir: Path, cfg: Config) -> Competition:
    train_csv, sample_csv = data_dir / "train.csv", data_dir / "sample_submission.csv"
    train_df = read_csv_strings(train_csv)
    sample = read_csv_strings(sample_csv)
    id_column, train_id = _id_columns(cfg, train_df, sample, train_csv, sample_csv)
    sample_targets = [c for c in sample.columns if c != id_column]
    if not sample_targets:
        raise DataError(f"{sample_csv}: no target column besides the id column '{id_column}'")
    train_dir = _find_dir(data_dir, cfg.data.train_dir, TRAIN_DIRS, "train")
    test_dir = _find_dir(data_dir, cfg.data.test_dir, TEST_DIRS, "test")
    group_column = read_group_column(cfg, train_df, train_csv)
    task = continuous_task(cfg, train_csv.name)
    values = None
    multi = None if task else _multilabel_targets(cfg, train_df, train_id, sample_targets, train_csv,
                                                  sample_csv, group_column)
    if task:
        target = cfg.data.target_column or (sample_targets[0] if len(sample_targets) == 1 else None)
        read = read_continuous(task, train_df, target, train_id, train_csv, sample_targets)
        targets, values = _Targets(read.class_values, read.label_index, read.columns, read.kind), read.values
    elif multi is None:
        targets = _read_targets(cfg, train_df, train_id, sample_targets, train_csv, sample_csv)
    else:  # each row's first label stands in where a view wants one label (EDA sample grid, duplicates)
        targets = _Targets(multi.labels, multi.matrix.argmax(axis=1), multi.columns, multi.kind)
    train = pd.DataFrame({
        "id": train_df[train_id].to_numpy(),
        "path": resolve_image_paths(train_df[train_id], train_dir, train_csv.name),
        "label": targets.label_index.astype(int),
    })
    if group_column:
        train["group"] = train_df[group_column].to_numpy()
    test = pd.DataFrame({"id": sample[id_column].to_numpy(),
                         "path": resolve_image_paths(sample[id_column], test_dir, sample_csv.name)})
    train_targets = train_df[[train_id] + targets.columns].rename(columns={train_id: id_column})
    return Competition(
        name=data_dir.name, data_dir=data_dir, layout="csv", train=train, test=test,
        class_values=list(targets.class_values), id_column=id_column, target_columns=targets.columns,
        submission_kind=targets.kind, train_targets=train_targets, sample_submission=sample,
        group_column=group_column, task=task or ("single_label" if multi is None else "multi_label"),
        targets=values if multi is None else multi.matrix)


def _multilabel_targets(cfg: Config, train_df: pd.DataFrame, train_id: str, sample_targets: list[str],
                        train_csv: Path, sample_csv: Path,
                        group_column: str | None) -> MultiLabelTargets | None:
    """The multi-label targets when the task is (or, auto, looks) multi-label; None for single-label."""
    if cfg.task == "single_label":
        return None
    if len(sample_targets) > 1 and not cfg.data.target_column and all(c in train_df for c in sample_targets):
        rows = multi_rows_of_columns(train_df, sample_targets)
        if decide_task(cfg, rows, len(train_df), train_csv.name) == "single_label":
            return None
        return column_targets(train_df, sample_targets, train_id, train_csv)
    target = cfg.data.target_column or (sample_targets[0] if len(sample_targets) == 1 else None)
    if target is None:  # tags in train.csv, one probability column per label in the submission
        candidates = [c for c in train_df.columns if c not in (train_id, group_column)]
        target = candidates[0] if len(candidates) == 1 else None
    if target is None or target not in train_df.columns:
        if cfg.task == "multi_label":
            raise DataError(f"{train_csv}: task is multi_label but no target column of tags or 0/1 label "
                            f"columns was found (columns: {list(train_df.columns)}); set data.target_column")
        return None  # the single-label reader says what is missing
    multi_rows = multi_rows_of_tags(train_df[target])
    if decide_task(cfg, multi_rows, len(train_df), train_csv.name) == "single_label":
        return None
    vocabulary = sample_targets if len(sample_targets) > 1 else None
    return tags_targets(train_df, target, train_id, train_csv, sample_csv, vocabulary)


def _id_columns(cfg: Config, train_df: pd.DataFrame, sample: pd.DataFrame, train_csv: Path,
                sample_csv: Path) -> tuple[str, str]:
    """The id column of sample_submission and of train.csv (train.csv's first column if it is named
    otherwise), both checked for empty and duplicate ids."""
    id_column = cfg.data.id_column or sample.columns[0]
    if id_column not in sample.columns:
        raise DataError(f"{sample_csv}: id column '{id_column}' not found (columns: {list(sample.columns)})")
    train_id = id_column if id_column in train_df.columns else train_df.columns[0]
    # sample_submission first: a target column taken for the id column (not first) repeats its values
    check_unique_ids(sample, id_column, sample_csv, "" if cfg.data.id_column else
                     f"; is '{id_column}' its id column? the id column must come first "
                     "(or set data.id_column)")
    check_unique_ids(train_df, train_id, train_csv)
    return id_column, train_id


def _read_targets(cfg: Config, train_df: pd.DataFrame, train_id: str, sample_targets: list[str],
                  train_csv: Path, sample_csv: Path) -> _Targets:
    if cfg.data.target_column or len(sample_targets) == 1:
        return _label_column(cfg, train_df, train_id, sample_targets, train_csv, sample_csv)
    if all(c in train_df.columns for c in sample_targets):  # one-hot targets in train.csv
        onehot = train_df[sample_targets].astype(float).to_numpy()
        if np.isnan(onehot).any():
            raise DataError(f"{train_csv}: NaN in the one-hot target columns {sample_targets}")
        targets = _Targets(sample_targets, onehot.argmax(axis=1), sample_targets, "proba")
    else:  # one probability column per class in the submission, labels in train.csv
        candidates = [c for c in train_df.columns if c != train_id]
        if len(candidates) != 1:
            raise DataError(f"{train_csv}: cannot tell the target column among {candidates}; "
                            "set data.target_column")
        target = candidates[0]
        check_labels(train_df, target, train_csv, train_id)
        index = _label_index(train_df[target].astype(str), sample_targets, train_csv, sample_csv)
        targets = _Targets(sample_targets, index, [target], "proba")
    _warn_unseen(targets, train_csv, sample_csv)
    return targets


def _label_column(cfg: Config, train_df: pd.DataFrame, train_id: str, sample_targets: list[str],
                  train_csv: Path, sample_csv: Path) -> _Targets:
    """One target column of labels; the submission holds labels (or class probabilities)."""
    target = cfg.data.target_column or sample_targets[0]
    if target not in train_df.columns:
        raise DataError(f"{train_csv}: target column '{target}' not found "
                        f"(columns: {list(train_df.columns)})")
    check_labels(train_df, target, train_csv, train_id)
    class_values = sort_class_values(train_df[target].tolist())
    labels = coerce_like(train_df[target], class_values)
    kind: SubmissionKind = "binary_proba" if (len(class_values) == 2 and cfg.metric == "roc_auc") else "label"
    if len(sample_targets) > 1:
        kind = "proba"
    targets = _Targets(class_values, _label_index(labels, class_values, train_csv, sample_csv),
                       [target], kind)
    _warn_unseen(targets, train_csv, sample_csv)
    return targets


def _label_index(labels: pd.Series, class_values: list, train_csv: Path, sample_csv: Path) -> np.ndarray:
    index_of = {str(v): i for i, v in enumerate(class_values)}
    unknown = sorted({str(v) for v in labels} - set(index_of))
    if unknown:
        raise DataError(f"{train_csv}: label(s) {unknown[:5]} are not columns of {sample_csv.name}")
    return np.array([index_of[str(v)] for v in labels])


def _warn_unseen(targets: _Targets, train_csv: Path, sample_csv: Path) -> None:
    unseen = [str(v) for i, v in enumerate(targets.class_values) if not (targets.label_index == i).any()]
    if unseen:
        log.warning("class(es) %s of %s never occur in %s", unseen, sample_csv.name, train_csv.name)


def _find_dir(data_dir: Path, override: str | None, candidates: tuple[str, ...], what: str) -> Path:
    if override:
        folder = data_dir / override
        if not folder.is_dir():
            raise DataError(f"data.{what}_dir: folder not found: {folder}")
        return folder
    for name in candidates:
        if (data_dir / name).is_dir():
            return data_dir / name
    globbed = sorted(p for p in data_dir.glob(f"{what}*") if p.is_dir())
    if globbed:
        return globbed[0]
    raise DataError(f"no {what} image folder in {data_dir} (looked for {', '.join(candidates)}); "
                    f"set data.{what}_dir")
