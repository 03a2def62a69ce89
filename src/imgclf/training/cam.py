"""Class-activation maps (Grad-CAM, from the ``grad-cam`` package) for a few correct and a few wrong
out-of-fold images of every class: each image is explained by the checkpoint that never trained on
it (fold k's checkpoint on fold k's validation rows), so the maps show what the OOF predictions saw.

The target layer is the backbone's deepest feature stage as timm's ``feature_info`` names it, so any
timm CNN and the multi-head mask model (whose ``backbone`` is a timm model) work without a table of
layer names. A failure here (an architecture without a spatial feature map, a missing package) is one
warning line: the figures are a view of the run, never a reason to fail it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from imgclf.atomic import write_csv
from imgclf.config.schema import Config, validate_config
from imgclf.data.boxes import competition_crop
from imgclf.data.competition import Competition
from imgclf.data.images import read_resized
from imgclf.paths import Paths
from imgclf.reporting.cam_plot import CamCell, plot_cam_grid
from imgclf.training.checkpoint import load_model_for_inference
from imgclf.training.engine import make_runtime

log = logging.getLogger(__name__)
PER_KIND = 2  # correct and wrong images per class: a handful, cheap on a CPU
MIN_CELLS = 4  # a map narrower than this is too coarse to show anything
MAX_CLASSES = 20  # rows of the grid; the first classes in label order beyond that are shown


def target_layer(model: nn.Module, side: int) -> nn.Module:
    """The deepest feature stage in timm's ``feature_info`` (of ``model.backbone`` for the multi-head
    model) whose map is still at least ``MIN_CELLS`` cells wide at ``side`` px: on small images the last
    stage is 1x1, and a 1x1 map cannot say where the model looked."""
    owner = model.backbone if hasattr(model, "backbone") else model
    info = getattr(owner, "feature_info", None)
    if not info:
        raise ValueError(f"{type(owner).__name__} has no timm feature_info to take a target layer from")
    stages = info if isinstance(info, list) else info.get_dicts()
    wide = [s for s in stages if side // s["reduction"] >= MIN_CELLS] or stages[:1]
    return owner.get_submodule(wide[-1]["module"])


def pick_rows(labels: np.ndarray, probs: np.ndarray, multi_label: bool,
              per_kind: int = PER_KIND) -> list[dict]:
    """For every class: its ``per_kind`` most confident correct rows and its ``per_kind`` worst wrong rows,
    each with the output the map explains (single-label: the predicted class; multi-label: the label)."""
    picked = []
    for c in range(min(probs.shape[1], MAX_CLASSES)):
        p = probs[:, c]
        if multi_label:
            truth, said = labels[:, c].astype(bool), p >= 0.5
            correct = np.flatnonzero(truth & said)[np.argsort(-p[truth & said], kind="stable")]
            miss = truth != said
            wrong = np.flatnonzero(miss)[np.argsort(-np.abs(truth[miss] - p[miss]), kind="stable")]
            explains = np.full(len(p), c)
        else:
            pred, mine = probs.argmax(axis=1), labels == c
            correct = np.flatnonzero(mine & (pred == c))[np.argsort(-p[mine & (pred == c)], kind="stable")]
            wrong = np.flatnonzero(mine & (pred != c))[np.argsort(p[mine & (pred != c)], kind="stable")]
            explains = pred
        for kind, rows in (("correct", correct), ("wrong", wrong)):
            picked += [{"row": int(r), "class": c, "kind": kind, "target": int(explains[r])}
                       for r in rows[:per_kind]]
    return picked


def cam_overlays(model: nn.Module, images: np.ndarray, targets: list[int], rt) -> np.ndarray:
    """Grad-CAM heatmaps of ``targets`` laid over the uint8 HxWx3 ``images``."""
    from pytorch_grad_cam import GradCAM  # imported here: optional for everything else
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = rt.to_input(torch.from_numpy(np.ascontiguousarray(images)))
    with GradCAM(model=model, target_layers=[target_layer(model, images.shape[1])]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    return np.stack([show_cam_on_image(im.astype(np.float32) / 255, m, use_rgb=True)
                     for im, m in zip(images, maps, strict=True)])


def _fold_cells(ckpt: Path, comp: Competition, picks: list[dict], rows: np.ndarray,
                probs: np.ndarray) -> list[CamCell]:
    device = torch.device("cpu")  # a handful of images: not worth a GPU's start-up, and deterministic
    model, state = load_model_for_inference(ckpt, comp, device)
    trained = state_config(state)  # the fold's own side and crop, whatever the caller's config says
    rt = make_runtime(trained, device, tuple(state["mean"].tolist()), tuple(state["std"].tolist()))
    size, crop = int(trained.data.image_size), competition_crop(trained.data, comp)
    images = np.stack([read_resized(comp.train["path"].iloc[rows[p["row"]]], size, crop) for p in picks])
    overlays = cam_overlays(model, images, [p["target"] for p in picks], rt)
    return [CamCell(overlay=o, cls=comp.classes[p["class"]], kind=p["kind"],
                    title=f"{comp.train['id'].iloc[rows[p['row']]]}\n{comp.classes[p['target']]} "
                          f"p={probs[p['row'], p['target']]:.2f}")
            for o, p in zip(overlays, picks, strict=True)]


def state_config(state: dict) -> Config:
    return validate_config({**state["config"], "model": {**state["config"]["model"], "pretrained": False}})


def write_cam_grid(cfg: Config, paths: Paths, comp: Competition, oof: pd.DataFrame,
                   experiment: str | None = None) -> None:
    """``errors/cam.png`` (and ``cam.csv``, the rows shown) of an experiment from its oof.csv frame."""
    out = paths.errors_dir(experiment)
    try:
        labels, probs = comp.labels_of(oof["id"]), oof[comp.classes].to_numpy()
        order = {i: n for n, i in enumerate(comp.train["id"].astype(str))}
        rows = np.array([order[i] for i in oof["id"].astype(str)])
        picks = pick_rows(labels, probs, comp.multi_label)
        folds = oof["fold"].to_numpy()
        cells = []
        for fold in sorted({int(folds[p["row"]]) for p in picks}):
            mine = [p for p in picks if folds[p["row"]] == fold]
            ckpt = paths.model_ckpt(fold, experiment, cfg.train.checkpoint)
            cells += _fold_cells(ckpt, comp, mine, rows, probs)
        write_csv(out / "cam.csv", pd.DataFrame([
            {"id": comp.train["id"].iloc[rows[p["row"]]], "fold": int(folds[p["row"]]),
             "class": comp.classes[p["class"]], "kind": p["kind"], "explains": comp.classes[p["target"]],
             "prob": float(probs[p["row"], p["target"]])} for p in picks]))
        plot_cam_grid(cells, comp.classes[:MAX_CLASSES], PER_KIND, out / "cam.png")
    except Exception as exc:  # noqa: BLE001 - a view of the run must never fail it
        log.warning("no class-activation maps for experiment %s: %s: %s",
                    experiment or cfg.experiment, type(exc).__name__, exc)
