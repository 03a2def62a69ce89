"""The teachers of one fold: their fold-k checkpoints' predictions, and the record of which
checkpoints made them.

The rule that keeps the student honest lives here: fold k's targets come from the checkpoint of fold
k (``train.checkpoint``: last.pt or best.pt) of each teacher experiment (trained without fold k's
validation images), never from test.csv (the fold-averaged prediction, whose other folds' models saw
fold k's images in training).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from imgclf.config.schema import Config
from imgclf.data.boxes import competition_crop
from imgclf.data.competition import Competition
from imgclf.errors import UserError
from imgclf.inference.predict import experiment_config
from imgclf.paths import Paths
from imgclf.training.checkpoint import load_model_for_inference
from imgclf.training.dataset import ImageDataset, decoded_cache, make_loader
from imgclf.training.engine import make_runtime, merge_views, pick_device, predict_views


@dataclass(frozen=True)
class FoldLogits:
    """The fold's teachers' logits (averaged over teacher experiments) on the given rows."""

    fold: int
    test: np.ndarray  # [n_test, C], comp.test order
    train: np.ndarray | None  # [n_fold_train, C], the fold's training rows in comp.train order
    record: list[dict]  # one entry per teacher checkpoint: experiment, fold, path, mtime_ns, sha256


def checkpoint_record(paths: Paths, experiment: str, fold: int, checkpoint: str) -> dict:
    """The teacher's fold checkpoint that predictions use (``train.checkpoint`` of its config)."""
    ckpt = paths.model_ckpt(fold, experiment, checkpoint)
    if not ckpt.is_file():
        raise UserError(f"pseudo.teacher: experiment '{experiment}' has no {ckpt}; train it first "
                        f"(pipelines/03_train.py --set experiment={experiment})")
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    return {"experiment": experiment, "fold": fold, "path": str(ckpt), "mtime_ns": ckpt.stat().st_mtime_ns,
            "sha256": digest}


def teacher_views(paths: Paths, experiment: str) -> list[str]:
    """The TTA views inference kept for the teacher (its infer.json), else the plain image."""
    stamp = paths.infer_json(experiment)
    if stamp.is_file():
        return list(json.loads(stamp.read_text()).get("tta", {}).get("views") or ["identity"])
    return ["identity"]


def fold_logits(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, teachers: list[str],
                fold: int, with_train: bool) -> FoldLogits:
    """Predictions of fold ``fold``'s checkpoint of every teacher (and nothing else) on the test
    images, and with ``with_train`` on the fold's training rows (distillation)."""
    tr = np.flatnonzero(folds != fold)
    test_parts, train_parts, record = [], [], []
    for experiment in teachers:
        ecfg = experiment_config(cfg, paths, experiment)
        record.append(checkpoint_record(paths, experiment, fold, ecfg.train.checkpoint))
        device = pick_device(ecfg)
        model, state = load_model_for_inference(Path(record[-1]["path"]), comp, device)
        rt = make_runtime(ecfg, device, tuple(state["mean"].tolist()), tuple(state["std"].tolist()))
        rt.progress = False
        views = teacher_views(paths, experiment)
        test_parts.append(_predict(ecfg, paths, comp, model, rt, comp.test["path"].to_numpy(), "test", views))
        if with_train:
            files = comp.train["path"].to_numpy()
            train_parts.append(_predict(ecfg, paths, comp, model, rt, files, "train", views, rows=tr))
    return FoldLogits(fold, np.mean(test_parts, axis=0), np.mean(train_parts, axis=0) if with_train else None,
                      record)


def _predict(ecfg: Config, paths: Paths, comp: Competition, model: torch.nn.Module, rt, files: np.ndarray,
             label: str, views: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    size, crop = ecfg.data.image_size, competition_crop(ecfg.data, comp)
    images = decoded_cache(files, size, ecfg, paths, label, crop)  # the cache inference already made
    if rows is not None:
        files, images = files[rows], None if images is None else images[rows]
    dataset = ImageDataset(files, None, size, None, images, crop)
    per_view, order = predict_views(model, make_loader(dataset, ecfg, rt.device, train=False), rt, views)
    logits = np.empty(per_view.shape[1:], dtype=np.float32)
    logits[order] = merge_views(per_view, ecfg.infer.tta_merge, comp.multi_label)
    return logits


def stale_checkpoints(paths: Paths, record: list[dict]) -> list[str]:
    """The recorded teacher checkpoints that changed (retrained, deleted) since the targets were made."""
    stale = []
    for entry in record:
        ckpt = Path(entry["path"])
        if not ckpt.is_file():
            stale.append(f"{ckpt} (deleted)")
        elif ckpt.stat().st_mtime_ns != entry["mtime_ns"] and \
                hashlib.sha256(ckpt.read_bytes()).hexdigest() != entry["sha256"]:  # a mere copy is no change
            stale.append(f"{ckpt} (rewritten)")
    return stale
