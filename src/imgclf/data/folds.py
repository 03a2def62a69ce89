"""Fold assignment, made once and read by every later stage (nothing re-splits)."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pandas as pd
import yaml

from imgclf.atomic import write_csv, write_text
from imgclf.config.loading import dump_yaml
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.errors import DataError
from imgclf.paths import Paths

log = logging.getLogger(__name__)


def assign_folds(comp: Competition, n_splits: int, seed: int) -> np.ndarray:
    """Fold index per train row: StratifiedGroupKFold when the data has groups; multi-label data is
    stratified per label (iterative stratification). sklearn is imported here, not with the module:
    every stage reads folds.csv, one makes it."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if comp.multi_label:
        return multilabel_folds(comp, n_splits, seed)
    labels = comp.train["label"].to_numpy()
    counts = np.bincount(labels)
    smallest = counts[counts > 0].min()  # a class absent from train is warned about at ingest
    if comp.has_groups:
        groups = comp.train["group"].to_numpy()
        if len(np.unique(groups)) < n_splits:
            raise DataError(f"folds.n_splits={n_splits} but the data has only "
                            f"{len(np.unique(groups))} groups")
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


def multilabel_folds(comp: Competition, n_splits: int, seed: int) -> np.ndarray:
    """MultilabelStratifiedKFold (Sechidis et al.'s iterative stratification) over the images, or,
    with groups, over the groups: each group becomes one row whose label counts are its images'
    summed, so a group never spans folds and the label balance is as close as the groups allow."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold  # sklearn: see assign_folds

    matrix = comp.labels
    fold = np.full(len(matrix), -1, dtype=int)
    if comp.has_groups:
        codes = pd.factorize(comp.train["group"].astype(str))[0]
        n_units = codes.max() + 1
        if n_units < n_splits:
            raise DataError(f"folds.n_splits={n_splits} but the data has only {n_units} groups")
        # presence per group (not counts): the splitter balances how many groups carry each label
        units = np.zeros((n_units, matrix.shape[1]), dtype=int)
        np.maximum.at(units, codes, matrix)
    else:
        if len(matrix) < n_splits:
            raise DataError(f"folds.n_splits={n_splits} but train has only {len(matrix)} images")
        codes, units = np.arange(len(matrix)), matrix
    splitter = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    unit_fold = np.full(len(units), -1, dtype=int)
    for k, (_, valid) in enumerate(splitter.split(np.zeros(len(units)), units)):
        unit_fold[valid] = k
    fold[:] = unit_fold[codes]
    return fold


def folds_frame(comp: Competition, fold: np.ndarray) -> pd.DataFrame:
    """folds.csv: id and target under the data's own column names, ``group`` if any, ``fold``."""
    frame = comp.train_targets.copy().reset_index(drop=True)
    if comp.has_groups:
        frame["group"] = comp.train["group"].to_numpy()
    frame["fold"] = fold
    return frame


def data_fingerprint(comp: Competition) -> dict:
    """A hash of the train ids and labels (row order ignored): what folds.csv was made from."""
    targets = comp.train_targets
    rows = sorted(map(tuple, targets.astype(str).to_numpy().tolist()))
    digest = hashlib.sha256(json.dumps([list(targets.columns), rows]).encode()).hexdigest()[:16]
    return {"train_ids_labels": digest, "n_train": len(targets), "columns": list(targets.columns)}


def data_changes(old: pd.DataFrame, targets: pd.DataFrame) -> list[str]:
    """What differs between the ids/labels of an existing folds.csv and the data's (empty: nothing).
    Target columns absent from ``old`` (a hand-made folds.csv with id and fold only) are not compared."""
    id_col = targets.columns[0]
    if id_col not in old.columns:
        return [f"no id column '{id_col}' (columns: {list(old.columns)})"]
    old_ids, new_ids = old[id_col].astype(str), targets[id_col].astype(str)
    known, now = set(old_ids), set(new_ids)
    added, removed = [i for i in new_ids if i not in known], [i for i in old_ids if i not in now]
    changes = [f"{len(added)} train id(s) added, e.g. '{added[0]}'"] if added else []
    changes += [f"{len(removed)} train id(s) removed, e.g. '{removed[0]}'"] if removed else []
    for column in [c for c in targets.columns[1:] if c in old.columns]:
        before = dict(zip(old_ids, old[column].astype(str), strict=True))
        after = dict(zip(new_ids, targets[column].astype(str), strict=True))
        changed = [i for i in new_ids if i in before and before[i] != after[i]]
        if changed:
            first = changed[0]
            changes.append(f"{len(changed)} label(s) in column '{column}' changed, e.g. '{first}': "
                           f"{before[first]} -> {after[first]}")
    return changes


def _read_fingerprint(paths: Paths) -> dict | None:
    try:
        return json.loads(paths.data_fingerprint_json.read_text())
    except (OSError, ValueError):
        return None


def _changed_split(paths: Paths, cfg: Config) -> str:
    """Why a new fold assignment differs when the data did not change: the folds settings."""
    try:
        saved = (yaml.safe_load(paths.folds_config_yaml.read_text()) or {}).get("folds") or {}
    except (OSError, yaml.YAMLError):
        saved = {}
    now = cfg.to_dict()["folds"]
    diff = [f"folds.{k}: {saved[k]!r} -> {now[k]!r}" for k in now if k in saved and saved[k] != now[k]]
    return "; ".join(diff) or "another fold assignment"


def folds_digest(paths: Paths) -> str:
    """What an experiment records (``folds.sha256``) of the folds.csv it was trained on."""
    return hashlib.sha256(paths.folds_csv.read_bytes()).hexdigest()[:16]


def check_experiment_folds(paths: Paths, experiment: str, remedy: str | None = None) -> None:
    """An experiment's checkpoints and OOF belong to the folds.csv it was trained on, never another;
    ``remedy`` is what the error tells the user to do (default: what the later stages can do)."""
    stamp = paths.folds_stamp(experiment)
    if stamp.is_file() and stamp.read_text().strip() != folds_digest(paths):
        remedy = remedy or (f"retrain it (delete {paths.experiment_dir(experiment)}) or leave it out with "
                            "--set ensemble.experiments=[NAME,...]")
        raise DataError(f"experiment '{experiment}' was trained on another {paths.folds_csv.name} "
                        f"({stamp} does not match {paths.folds_csv}); {remedy}")


def make_folds(cfg: Config, paths: Paths, comp: Competition) -> pd.DataFrame:
    """Write folds.csv and the data fingerprint beside it. A folds.csv that trained experiments
    depend on is never replaced by a different one: their checkpoints and OOF would no longer match."""
    frame = folds_frame(comp, assign_folds(comp, cfg.folds.n_splits, cfg.folds.seed))
    text = frame.to_csv(index=False)
    if paths.folds_csv.is_file() and paths.folds_csv.read_text() == text:
        log.info("%s is up to date", paths.folds_csv)
    else:
        trained = paths.trained_experiments() if paths.folds_csv.is_file() else []
        if trained:
            old = pd.read_csv(paths.folds_csv, dtype=str, keep_default_na=False)
            what = "; ".join(data_changes(old, comp.train_targets)[:3]) or _changed_split(paths, cfg)
            raise DataError(f"{paths.folds_csv} would change ({what}), "
                            f"but experiment(s) {', '.join(trained)} "
                            f"were trained on it; to start afresh move {paths.comp_dir} away (or use another "
                            "--set paths.root), or keep the data and folds settings they were trained with")
        write_csv(paths.folds_csv, frame)
        counts = frame.groupby("fold").size().to_dict()
        log.info("wrote %s: %d images in %d folds %s%s", paths.folds_csv, len(frame), cfg.folds.n_splits,
                 counts, " (grouped)" if comp.has_groups else "")
    # after folds.csv: a run killed in between leaves an old fingerprint, which read_folds re-checks
    fingerprint = {**data_fingerprint(comp), "folds_csv": folds_digest(paths)}
    write_text(paths.data_fingerprint_json, json.dumps(fingerprint, indent=1) + "\n")
    return frame


def write_folds(cfg: Config, paths: Paths, comp: Competition) -> None:
    """The folds stage: folds.csv and its fingerprint, then the config it ran with (its folds
    settings explain a changed split later)."""
    make_folds(cfg, paths, comp)
    write_text(paths.folds_config_yaml, dump_yaml(cfg))


def read_folds(paths: Paths, comp: Competition) -> np.ndarray:
    """Fold index per train row of ``comp``; refuses a folds.csv made for other data, saying what differs."""
    if not paths.folds_csv.is_file():
        raise DataError(f"{paths.folds_csv} not found: run pipelines/02_folds.py first")
    frame = pd.read_csv(paths.folds_csv, dtype=str, keep_default_na=False)
    if comp.id_column not in frame.columns or "fold" not in frame.columns:
        raise DataError(f"{paths.folds_csv}: expected columns '{comp.id_column}' and 'fold'")
    saved = _read_fingerprint(paths) or {}
    current = {**data_fingerprint(comp), "folds_csv": folds_digest(paths)}
    trained = paths.trained_experiments()
    how = (f"experiment(s) {', '.join(trained)} were trained on the old data: move {paths.comp_dir} away to "
           "start afresh (or restore the old data)" if trained else "rerun pipelines/02_folds.py")
    if any(saved.get(k) != current[k] for k in ("train_ids_labels", "folds_csv")):
        # the data or folds.csv changed since 02_folds.py: folds.csv itself says what it was made from
        changes = data_changes(frame, comp.train_targets)
        if changes:
            raise DataError(f"{paths.folds_csv} was made for different data "
                            f"({'; '.join(changes[:3])}); {how}")
    try:
        by_id = dict(zip(frame[comp.id_column], frame["fold"].astype(int), strict=True))
    except ValueError:
        raise DataError(f"{paths.folds_csv}: column 'fold' must hold fold numbers") from None
    ids = comp.train["id"].astype(str)
    missing = [i for i in ids if i not in by_id]
    if missing or len(by_id) != len(ids):
        raise DataError(f"{paths.folds_csv} was made for different data ({len(missing)} train ids missing, "
                        f"{len(by_id)} rows vs {len(ids)} images); {how}")
    return np.array([by_id[i] for i in ids], dtype=int)
