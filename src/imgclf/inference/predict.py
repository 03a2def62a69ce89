"""TTA inference of every trained experiment: fold-averaged test.csv plus the same TTA on OOF."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import yaml

from imgclf.atomic import write_csv, write_text
from imgclf.config.schema import Config, validate_config
from imgclf.data.boxes import competition_crop
from imgclf.data.competition import PREDICTION, Competition
from imgclf.data.folds import check_experiment_folds, read_folds
from imgclf.data.ingest import load_competition
from imgclf.inference.predictions import (
    check_folds_finished,
    checkpoint_times,
    data_stamp,
    selected_experiments,
)
from imgclf.inference.tta import select_views, tta_gain
from imgclf.models.ordinal import decode_views, head_of, target_scale
from imgclf.paths import Paths
from imgclf.planning.views import tta_views
from imgclf.training.checkpoint import load_model_for_inference
from imgclf.training.dataset import ImageDataset, make_loader, table_images
from imgclf.training.engine import make_runtime, merge_views, pick_device, predict_views, probabilities
from imgclf.training.preflight import check_inference_inputs

log = logging.getLogger(__name__)


def experiment_config(cfg: Config, paths: Paths, experiment: str) -> Config:
    """The experiment's saved training config, with this run's inference/device/path settings."""
    saved = yaml.safe_load(paths.config_yaml(experiment).read_text()) or {}
    current = cfg.to_dict()
    for key in ("infer", "ensemble", "device", "paths"):
        saved[key] = current[key]
    saved["data"] = {**saved.get("data", {}), "dir": current["data"]["dir"],
                     "cache": current["data"]["cache"], "cache_max_gb": current["data"]["cache_max_gb"]}
    return validate_config(saved)


def _stamp(paths: Paths, comp: Competition, experiment: str, n_folds: int, views: list[str],
           merge: str) -> dict:
    """What test.csv and oof_tta.csv were made from: checkpoints, TTA, and the folds and test ids."""
    return {"views": views, "merge": merge, "checkpoints": checkpoint_times(paths, experiment, n_folds),
            "data": data_stamp(paths, comp)}


def infer_experiment(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray,
                     experiment: str) -> dict:
    ecfg = experiment_config(cfg, paths, experiment)
    n_folds = int(folds.max()) + 1
    check_experiment_folds(paths, experiment)
    check_folds_finished(paths, experiment, n_folds)
    views = tta_views(ecfg)
    stamp_file = paths.infer_json(experiment)
    stamp = _stamp(paths, comp, experiment, n_folds, views, ecfg.infer.tta_merge)
    if (stamp_file.is_file() and paths.test_csv(experiment).is_file()
            and paths.oof_tta_csv(experiment).is_file()):
        saved = json.loads(stamp_file.read_text())
        if saved.get("stamp") == stamp:
            log.info("%s: test.csv is up to date with its checkpoints and TTA, skipped", experiment)
            return saved["tta"]
    oof_ids, oof_folds, per_view_oof = _predict_oof_views(ecfg, paths, comp, folds, experiment, views)
    kept = views
    # multi-label, ordinal, regression: every view kept
    if ecfg.infer.tta == "auto" and len(views) > 1 and comp.task == "single_label":
        label_of = dict(zip(comp.train["id"].astype(str), comp.train["label"], strict=True))
        labels = np.array([label_of[str(i)] for i in oof_ids])
        kept_idx = select_views(per_view_oof, labels, views, ecfg.metric, ecfg.infer.tta_merge)
        kept = [views[i] for i in kept_idx]
        per_view_oof = per_view_oof[kept_idx]
    # the test images only in the kept views: with seven candidates and a test set three times the
    # train set, the views OOF dropped were most of the inference time
    per_view_test = _predict_test_views(ecfg, paths, comp, n_folds, experiment, kept)
    test, oof = _merged(ecfg, comp, per_view_test, per_view_oof)
    test.insert(0, "id", comp.test["id"].to_numpy())
    oof.insert(0, "fold", oof_folds)
    oof.insert(0, "id", oof_ids)
    oof_tta = _in_train_order(oof, comp)
    write_csv(paths.oof_tta_csv(experiment), oof_tta)
    write_csv(paths.test_csv(experiment), test)
    tta = tta_gain(ecfg, paths, comp, experiment, oof_tta, kept)
    tta["candidates"] = views
    write_text(stamp_file, json.dumps({"stamp": stamp, "tta": tta}, indent=1))
    return tta


def _merged(ecfg: Config, comp: Competition, per_view_test: np.ndarray,
            per_view_oof: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test predictions averaged over views then folds, and OOF ones over views: probabilities, or
    for ordinal and regression models each view's number (the expected grade) averaged."""
    if comp.continuous:
        head, (centre, scale) = head_of(ecfg, comp), target_scale(comp)
        test = np.mean([decode_views(one_fold, head, centre, scale) for one_fold in per_view_test], axis=0)
        return (pd.DataFrame({PREDICTION: test}),
                pd.DataFrame({PREDICTION: decode_views(per_view_oof, head, centre, scale)}))
    merge, multi = ecfg.infer.tta_merge, comp.multi_label
    test_probs = np.mean([probabilities(merge_views(one_fold, merge, multi), multi)
                          for one_fold in per_view_test], axis=0)
    return (pd.DataFrame(test_probs, columns=comp.classes),
            pd.DataFrame(probabilities(merge_views(per_view_oof, merge, multi), multi), columns=comp.classes))


class _FoldModels:
    """Each fold's model of one experiment, loaded when asked for, with its input runtime."""

    def __init__(self, ecfg: Config, paths: Paths, comp: Competition, experiment: str) -> None:
        self.ecfg, self.paths, self.comp, self.experiment = ecfg, paths, comp, experiment
        self.device = pick_device(ecfg)
        self.size, self.crop = ecfg.data.image_size, competition_crop(ecfg.data, comp)

    def predict(self, fold: int, dataset: ImageDataset, views: list[str], what: str
                ) -> tuple[np.ndarray, np.ndarray]:
        """Per-view logits (views, rows, classes) of fold ``fold``'s model, and the rows they are of."""
        ckpt = self.paths.model_ckpt(fold, self.experiment, self.ecfg.train.checkpoint)
        model, state = load_model_for_inference(ckpt, self.comp, self.device)
        rt = make_runtime(self.ecfg, self.device, tuple(state["mean"].tolist()), tuple(state["std"].tolist()))
        loader = make_loader(dataset, self.ecfg, self.device, train=False)
        return predict_views(model, loader, rt, views, desc=f"{self.experiment} {what} fold {fold}")


def _predict_oof_views(ecfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, experiment: str,
                       views: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each fold's model on its validation images: the OOF ids, their folds, and the per-view logits
    (views, OOF rows, classes)."""
    models = _FoldModels(ecfg, paths, comp, experiment)
    train_images = table_images(comp.train, models.size, ecfg, paths, "train", models.crop)
    parts, ids, fold_of = [], [], []
    for fold in range(int(folds.max()) + 1):
        va = np.flatnonzero(folds == fold)
        valid_ds = ImageDataset(comp.train["path"].to_numpy()[va], None, models.size, None,
                                None if train_images is None else train_images[va], models.crop)
        logits, rows = models.predict(fold, valid_ds, views, "oof")
        parts.append(logits)
        ids.append(comp.train["id"].to_numpy()[va][rows])
        fold_of.append(np.full(len(rows), fold))
    return np.concatenate(ids), np.concatenate(fold_of), np.concatenate(parts, axis=1)


def _predict_test_views(ecfg: Config, paths: Paths, comp: Competition, n_folds: int, experiment: str,
                        views: list[str]) -> np.ndarray:
    """Every fold's model on the test images: (folds, views, rows, classes), in test order."""
    models = _FoldModels(ecfg, paths, comp, experiment)
    cached = table_images(comp.test, models.size, ecfg, paths, "test", models.crop)
    test_ds = ImageDataset(comp.test["path"].to_numpy(), None, models.size, None, cached, models.crop)
    parts = []
    for fold in range(n_folds):
        logits, rows = models.predict(fold, test_ds, views, "test")
        in_order = np.empty_like(logits)
        in_order[:, rows] = logits
        parts.append(in_order)
    return np.stack(parts)


def _in_train_order(oof: pd.DataFrame, comp: Competition) -> pd.DataFrame:
    order = {i: n for n, i in enumerate(comp.train["id"].astype(str))}
    keys = np.array([order[i] for i in oof["id"].astype(str)])
    return oof.iloc[np.argsort(keys, kind="stable")].reset_index(drop=True)


def run_inference(cfg: Config, paths: Paths) -> dict[str, dict]:
    comp = load_competition(cfg, paths)
    folds = read_folds(paths, comp)
    check_inference_inputs(comp)
    experiments = selected_experiments(cfg, paths, int(folds.max()) + 1)
    return {e: infer_experiment(cfg, paths, comp, folds, e) for e in experiments}
