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
from imgclf.data.competition import Competition
from imgclf.data.folds import check_experiment_folds, read_folds
from imgclf.data.ingest import load_competition
from imgclf.inference.predictions import check_folds_finished, data_stamp, selected_experiments
from imgclf.inference.tta import tta_gain
from imgclf.paths import Paths
from imgclf.training.checkpoint import load_model_for_inference
from imgclf.training.dataset import ImageDataset, make_loader, table_images
from imgclf.training.engine import make_runtime, pick_device, predict_logits, probabilities
from imgclf.training.preflight import check_inference_inputs
from imgclf.training.transforms import tta_views

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
    ckpts = [paths.best_ckpt(k, experiment) for k in range(n_folds)]
    return {"views": views, "merge": merge, "checkpoints": [p.stat().st_mtime_ns for p in ckpts],
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
    device = pick_device(ecfg)
    size, crop = ecfg.data.image_size, competition_crop(ecfg.data, comp)
    test_ds = ImageDataset(comp.test["path"].to_numpy(), None, size, None,
                           table_images(comp.test, size, ecfg, paths, "test", crop), crop)
    train_images = table_images(comp.train, size, ecfg, paths, "train", crop)
    test_sum = np.zeros((len(comp.test), comp.num_classes))
    oof_parts = []
    for fold in range(n_folds):
        model, state = load_model_for_inference(paths.best_ckpt(fold, experiment), comp, device)
        rt = make_runtime(ecfg, device, tuple(state["mean"].tolist()), tuple(state["std"].tolist()))
        multi = comp.multi_label
        logits, rows = predict_logits(model, make_loader(test_ds, ecfg, device, train=False), rt, views,
                                      ecfg.infer.tta_merge, desc=f"{experiment} test fold {fold}",
                                      multi_label=multi)
        test_sum[rows] += probabilities(logits, multi)
        va = np.flatnonzero(folds == fold)
        valid_ds = ImageDataset(comp.train["path"].to_numpy()[va], None, size, None,
                                None if train_images is None else train_images[va], crop)
        logits, rows = predict_logits(model, make_loader(valid_ds, ecfg, device, train=False), rt, views,
                                      ecfg.infer.tta_merge, desc=f"{experiment} oof fold {fold}",
                                      multi_label=multi)
        part = pd.DataFrame(probabilities(logits, multi), columns=comp.classes)
        part.insert(0, "fold", fold)
        part.insert(0, "id", comp.train["id"].to_numpy()[va][rows])
        oof_parts.append(part)
    test = pd.DataFrame(test_sum / n_folds, columns=comp.classes)
    test.insert(0, "id", comp.test["id"].to_numpy())
    oof_tta = _in_train_order(pd.concat(oof_parts, ignore_index=True), comp)
    write_csv(paths.oof_tta_csv(experiment), oof_tta)
    write_csv(paths.test_csv(experiment), test)
    tta = tta_gain(ecfg, paths, comp, experiment, oof_tta, views)
    write_text(stamp_file, json.dumps({"stamp": stamp, "tta": tta}, indent=1))
    return tta


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
