"""Loading every experiment's OOF (with TTA) and test predictions, aligned strictly by id.

Ensembling compares models row by row, so a prediction file whose ids differ from the data's
(another folds.csv, another test folder, a truncated file) is refused rather than re-indexed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.folds import check_experiment_folds, folds_digest
from imgclf.errors import DataError, UserError
from imgclf.paths import Paths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelPredictions:
    name: str
    oof: np.ndarray  # (n_train, n_classes), rows in comp.train order, same TTA as the test predictions
    test: np.ndarray  # (n_test, n_classes), rows in comp.test order


def selected_experiments(cfg: Config, paths: Paths, n_folds: int, need_checkpoints: bool = True) -> list[str]:
    """``ensemble.experiments`` (each must be complete), or every experiment with a saved config
    whose folds are all trained: a partly trained one (``--folds 0`` for a quick look, or an
    interrupted run) is left out with one warning line naming it and the command that completes it."""
    found = paths.experiments()
    if cfg.ensemble.experiments is None:
        if not found:
            raise UserError(f"no trained experiment under {paths.comp_dir}: run pipelines/03_train.py first")
        complete = [e for e in found if not unfinished_folds(paths, e, n_folds, need_checkpoints)]
        for experiment in found:
            if experiment not in complete:
                left = ",".join(map(str, unfinished_folds(paths, experiment, n_folds, need_checkpoints)))
                log.warning("experiment '%s' left out: fold(s) %s not finished; complete it with "
                            "pipelines/03_train.py --set experiment=%s", experiment, left, experiment)
        if not complete:
            check_folds_finished(paths, found[0], n_folds, need_checkpoints)  # raises, naming the fold
        return complete
    missing = [e for e in cfg.ensemble.experiments if e not in found]
    if missing:
        raise UserError(f"ensemble.experiments: '{missing[0]}' has no config.yaml under {paths.comp_dir} "
                        f"(trained: {', '.join(found) or 'none'})")
    return list(cfg.ensemble.experiments)


def unfinished_folds(paths: Paths, experiment: str, n_folds: int, need_checkpoints: bool = True) -> list[int]:
    """Folds without their OOF predictions (or, for inference, their best checkpoint)."""
    return [k for k in range(n_folds) if not (paths.fold_oof(k, experiment).is_file() and (
        not need_checkpoints or paths.best_ckpt(k, experiment).is_file()))]


def check_folds_finished(paths: Paths, experiment: str, n_folds: int, need_checkpoints: bool = True) -> None:
    """Every fold has its OOF (and, for inference, ``need_checkpoints``, its best.pt)."""
    for fold in range(n_folds):
        done = paths.fold_oof(fold, experiment).is_file() and (
            not need_checkpoints or paths.best_ckpt(fold, experiment).is_file())
        if not done:
            raise UserError(f"experiment '{experiment}': fold {fold} is not finished "
                            f"({paths.fold_oof(fold, experiment)} missing); run pipelines/03_train.py "
                            f"--folds {fold} --set experiment={experiment}")


def checkpoint_files(paths: Paths, experiment: str, n_folds: int) -> list[Path]:
    """Every fold's best.pt and last.pt: either may be the one predictions use (train.checkpoint)."""
    return [p for k in range(n_folds) for p in paths.fold_checkpoints(k, experiment)]


def checkpoint_times(paths: Paths, experiment: str, n_folds: int) -> list[int]:
    """The modification times of ``checkpoint_files``: what inference was made from, so that a fold
    retrained since is noticed."""
    return [p.stat().st_mtime_ns for p in checkpoint_files(paths, experiment, n_folds)]


def check_experiment_ready(paths: Paths, comp: Competition, experiment: str, n_folds: int) -> None:
    """Every fold trained and the TTA inference run after the checkpoints were last written."""
    check_folds_finished(paths, experiment, n_folds, need_checkpoints=False)
    for needed in (paths.test_csv(experiment), paths.oof_tta_csv(experiment)):
        if not needed.is_file():
            raise UserError(f"experiment '{experiment}': {needed} missing; run pipelines/05_infer.py")
    stamp_file = paths.infer_json(experiment)
    if stamp_file.is_file() and all(p.is_file() for p in checkpoint_files(paths, experiment, n_folds)):
        stamp = json.loads(stamp_file.read_text()).get("stamp", {})
        if stamp.get("checkpoints") != checkpoint_times(paths, experiment, n_folds):
            raise UserError(f"experiment '{experiment}': test.csv is older than its checkpoints; "
                            "run pipelines/05_infer.py")
        if stamp.get("data") != data_stamp(paths, comp):
            raise UserError(f"experiment '{experiment}': test.csv was made for another folds.csv or other "
                            "test images; run pipelines/05_infer.py")


def data_stamp(paths: Paths, comp: Competition) -> dict:
    """The folds.csv and test ids that predictions were made for."""
    test_ids = "\n".join(comp.test["id"].astype(str)).encode()
    return {"folds": folds_digest(paths), "test_ids": hashlib.sha256(test_ids).hexdigest()[:16]}


def aligned_probs(path: Path, ids: pd.Series, classes: list[str],
                  what: str) -> tuple[np.ndarray, pd.DataFrame]:
    """The class-probability columns of ``path`` in the order of ``ids``; any id mismatch is an error."""
    frame = pd.read_csv(path, dtype={"id": str})
    if "id" not in frame.columns:
        raise DataError(f"{path}: no 'id' column")
    missing_cols = [c for c in classes if c not in frame.columns]
    if missing_cols:
        raise DataError(f"{path}: class column(s) {missing_cols[:5]} missing "
                        f"(columns: {list(frame.columns)})")
    extra = sorted(set(frame.columns) - set(classes) - {"id", "fold"})
    if extra:
        raise DataError(f"{path}: unexpected column(s) {extra[:5]}: not classes of this competition")
    got = frame["id"].astype(str)
    want = ids.astype(str)
    if got.duplicated().any():
        raise DataError(f"{path}: duplicate id '{got[got.duplicated()].iloc[0]}'")
    lost, unknown = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if lost or unknown:
        detail = "; ".join(s for s in (f"{len(lost)} {what} id(s) missing, e.g. '{lost[0]}'" if lost else "",
                                       f"{len(unknown)} unknown id(s), e.g. '{unknown[0]}'"
                                       if unknown else "")
                           if s)
        raise DataError(f"{path}: ids differ from the {what} images ({detail}); "
                        "rerun the stage that wrote it")
    frame = frame.set_index(got).loc[want.to_numpy()].reset_index(drop=True)
    probs = frame[classes].to_numpy(dtype=float)
    bad = ~np.isfinite(probs)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{path}: NaN/inf probability in column '{classes[col]}' for id '{want.iloc[row]}'")
    return probs, frame


def load_model_predictions(paths: Paths, comp: Competition, folds: np.ndarray,
                           experiment: str) -> ModelPredictions:
    check_experiment_folds(paths, experiment)
    check_experiment_ready(paths, comp, experiment, int(folds.max()) + 1)
    oof_path = paths.oof_tta_csv(experiment)
    oof, frame = aligned_probs(oof_path, comp.train["id"], comp.output_columns, "train")
    if "fold" in frame.columns and not np.array_equal(frame["fold"].to_numpy(dtype=int), folds):
        raise DataError(f"{oof_path}: its folds differ from {paths.folds_csv}; the experiment was trained on "
                        "another fold split: retrain it "
                        f"(pipelines/03_train.py --set experiment={experiment})")
    test, _ = aligned_probs(paths.test_csv(experiment), comp.test["id"], comp.output_columns, "test")
    return ModelPredictions(experiment, oof, test)
