"""Out-of-fold predictions: each finished fold's validation probabilities, merged and scored."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from imgclf.atomic import write_csv, write_text
from imgclf.config.schema import Config
from imgclf.data.boxes import competition_crop
from imgclf.data.competition import PREDICTION, Competition
from imgclf.errors import UserError
from imgclf.metrics import get_metric, score_all
from imgclf.models.ordinal import decode, head_of, target_scale
from imgclf.paths import Paths
from imgclf.reporting.errors import write_error_analysis
from imgclf.reporting.errors_multilabel import write_multilabel_error_analysis
from imgclf.reporting.figures import plot_oof
from imgclf.reporting.ordinal import plot_continuous_oof
from imgclf.training.cam import write_cam_grid
from imgclf.training.checkpoint import load_model_for_inference
from imgclf.training.dataset import ImageDataset, make_loader, table_images
from imgclf.training.distributed import device_for, dist_info, gather_rows, main_first, shard
from imgclf.training.engine import make_runtime, pick_device, predict_logits, probabilities
from imgclf.training.status import print_cv


def predict_fold_oof(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, fold: int,
                     experiment: str | None = None, views: list[str] | None = None) -> pd.DataFrame:
    """The fold's validation probabilities from its checkpoint (``train.checkpoint``), keyed by id
    (under DDP: every rank predicts its share of the rows, each row exactly once, and every rank gets
    them all)."""
    info = dist_info()
    device = device_for(info, pick_device(cfg))
    ckpt = paths.model_ckpt(fold, experiment, cfg.train.checkpoint)
    model, state = load_model_for_inference(ckpt, comp, device, info)
    rt = make_runtime(cfg, device, tuple(state["mean"].tolist()), tuple(state["std"].tolist()))
    if not info.is_main:
        rt.progress = False
    va = np.flatnonzero(folds == fold)
    size, crop = cfg.data.image_size, competition_crop(cfg.data, comp)
    images = main_first(lambda: table_images(comp.train, size, cfg, paths, "train", crop), info)
    ds = ImageDataset(comp.train["path"].to_numpy()[va], comp.labels[va], size, None,
                      None if images is None else images[va], crop)
    loader = make_loader(ds, cfg, device, train=False, rows=shard(np.arange(len(va)), info))
    logits, rows = gather_rows(*predict_logits(model, loader, rt, views, cfg.infer.tta_merge,
                                               desc=f"oof fold {fold}", multi_label=comp.multi_label), info)
    if comp.continuous:
        frame = pd.DataFrame({PREDICTION: decode(logits, head_of(cfg, comp), *target_scale(comp))})
    else:
        frame = pd.DataFrame(probabilities(logits, comp.multi_label), columns=comp.classes)
    frame.insert(0, "fold", fold)
    frame.insert(0, "id", comp.train["id"].to_numpy()[va][rows])
    return frame


def summarise_cv(cfg: Config, paths: Paths, comp: Competition, n_folds: int,
                 experiment: str | None = None) -> dict:
    """Merge the finished folds into oof.csv (id, fold, classes) and score them: per fold and pooled."""
    parts = [pd.read_csv(paths.fold_oof(k, experiment), dtype={"id": str})
             for k in range(n_folds) if paths.fold_oof(k, experiment).is_file()]
    if not parts:
        raise UserError(f"no finished fold under {paths.experiment_dir(experiment)}")
    oof = pd.concat(parts, ignore_index=True)
    order = {i: n for n, i in enumerate(comp.train["id"].astype(str))}
    oof = oof.iloc[np.argsort([order[i] for i in oof["id"].astype(str)],
                              kind="stable")].reset_index(drop=True)
    write_csv(paths.oof_csv(experiment), oof)
    labels = comp.labels_of(oof["id"])
    probs = oof[comp.output_columns].to_numpy()
    metric = get_metric(cfg.metric, comp.task)
    per_fold = {int(k): metric(labels[oof["fold"] == k], probs[oof["fold"] == k])
                for k in sorted(oof["fold"].unique())}
    summary = {
        "experiment": experiment or cfg.experiment, "metric": cfg.metric, "folds": per_fold,
        "mean": float(np.mean(list(per_fold.values()))), "std": float(np.std(list(per_fold.values()))),
        "pooled": score_all(labels, probs, task=comp.task), "complete": len(per_fold) == n_folds,
        "n_oof": len(oof),
    }
    write_text(paths.cv_json(experiment), json.dumps(summary, indent=1))
    print_cv(summary)
    path_of = dict(zip(comp.train["id"].astype(str), comp.train["path"], strict=True))
    ids = oof["id"].astype(str).tolist()
    image_paths = [path_of[i] for i in ids]
    if comp.continuous:  # a value an image: no classes to confuse, no class to explain
        plot_continuous_oof(comp.task, comp.classes, labels, probs[:, 0],
                            paths.confusion_matrix_png(experiment))
        return summary
    if comp.multi_label:  # one label an image is what a confusion matrix needs
        write_multilabel_error_analysis(labels, probs, comp.classes, ids, image_paths,
                                        paths.errors_dir(experiment))
    else:
        plot_oof(labels, probs, comp.classes, paths.confusion_matrix_png(experiment),
                 paths.per_class_f1_png(experiment))
        write_error_analysis(labels, probs, comp.classes, ids, image_paths, paths.errors_dir(experiment))
    write_cam_grid(cfg, paths, comp, oof, experiment)
    return summary
