"""Fold assignment, made once and read by every later stage (nothing re-splits)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from .atomic import write_csv
from .config import Config
from .data import Competition
from .errors import DataError
from .paths import Paths

log = logging.getLogger(__name__)


def assign_folds(comp: Competition, n_splits: int, seed: int) -> np.ndarray:
    """Fold index per train row: StratifiedGroupKFold when the data has groups."""
    labels = comp.train["label"].to_numpy()
    counts = np.bincount(labels)
    smallest = counts[counts > 0].min()  # a class absent from train is warned about at ingest
    if comp.has_groups:
        groups = comp.train["group"].to_numpy()
        if len(np.unique(groups)) < n_splits:
            raise DataError(f"folds.n_splits={n_splits} but the data has only {len(np.unique(groups))} groups")
        # sklearn < 1.8 with shuffle=True permutes the per-group class counts but not the group ids
        # (scikit-learn#32478, fixed by PR #32540), which leaves the folds unstratified. Shuffle the
        # groups ourselves instead: random group codes only change the greedy order among ties.
        _, codes = np.unique(groups, return_inverse=True)
        shuffled = np.random.default_rng(seed).permutation(codes.max() + 1)[codes]
        splits = StratifiedGroupKFold(n_splits=n_splits).split(labels, labels, shuffled)
    else:
        if len(labels) < n_splits:
            raise DataError(f"folds.n_splits={n_splits} but train has only {len(labels)} images")
        if counts.max() < n_splits:  # sklearn would raise a bare ValueError
            raise DataError(f"folds.n_splits={n_splits} but no class has that many train images "
                            f"(largest class: {counts.max()})")
        if smallest < n_splits:
            log.warning("the rarest class has %d images, fewer than folds.n_splits=%d", smallest, n_splits)
        splits = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(labels, labels)
    fold = np.full(len(labels), -1, dtype=int)
    for k, (_, valid) in enumerate(splits):
        fold[valid] = k
    return fold


def folds_frame(comp: Competition, fold: np.ndarray) -> pd.DataFrame:
    """folds.csv: id and target under the data's own column names, ``group`` if any, ``fold``."""
    frame = comp.extra["train_targets"].copy().reset_index(drop=True)
    if comp.has_groups:
        frame["group"] = comp.train["group"].to_numpy()
    frame["fold"] = fold
    return frame


def make_folds(cfg: Config, paths: Paths, comp: Competition) -> pd.DataFrame:
    frame = folds_frame(comp, assign_folds(comp, cfg.folds.n_splits, cfg.folds.seed))
    if paths.folds_csv.is_file() and paths.folds_csv.read_text() == frame.to_csv(index=False):
        log.info("%s is up to date", paths.folds_csv)
        return frame
    write_csv(paths.folds_csv, frame)
    counts = frame.groupby("fold").size().to_dict()
    log.info("wrote %s: %d images in %d folds %s%s", paths.folds_csv, len(frame), cfg.folds.n_splits,
             counts, " (grouped)" if comp.has_groups else "")
    return frame


def read_folds(paths: Paths, comp: Competition) -> np.ndarray:
    """Fold index per train row of ``comp``; refuses a folds.csv made for other data."""
    if not paths.folds_csv.is_file():
        raise DataError(f"{paths.folds_csv} not found: run pipelines/02_folds.py first")
    frame = pd.read_csv(paths.folds_csv, dtype={comp.id_column: str})
    if comp.id_column not in frame.columns or "fold" not in frame.columns:
        raise DataError(f"{paths.folds_csv}: expected columns '{comp.id_column}' and 'fold'")
    by_id = dict(zip(frame[comp.id_column].astype(str), frame["fold"].astype(int), strict=True))
    ids = comp.train["id"].astype(str)
    missing = [i for i in ids if i not in by_id]
    if missing or len(by_id) != len(ids):
        raise DataError(f"{paths.folds_csv} was made for different data ({len(missing)} train ids missing, "
                        f"{len(by_id)} rows vs {len(ids)} images); rerun pipelines/02_folds.py")
    return np.array([by_id[i] for i in ids], dtype=int)
