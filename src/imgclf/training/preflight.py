"""Checks a stage makes before it writes anything, so that bad input fails in seconds with one
``error:`` line, not after minutes of training, and leaves no new artefact behind."""

from __future__ import annotations

from pathlib import Path

import torch

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.images import check_image_files
from imgclf.models.backbone import load_state_file
from imgclf.models.factory import build_model


def check_training_inputs(cfg: Config, comp: Competition) -> None:
    """The model can be built (a known timm name and arguments, pretrained weights reachable or in
    the cache, a readable ``model.pretrained_path``) and every train image is a complete image file.

    Without hub weights the model is built on the meta device: the check costs no weight
    initialisation, so the model is really built once, by the first fold."""
    if cfg.model.pretrained and cfg.model.pretrained_path is None:
        build_model(cfg, comp.num_classes)  # the download (or cache lookup) is what is checked
    else:
        if cfg.model.pretrained_path is not None and cfg.model.pretrained:
            load_state_file(Path(cfg.model.pretrained_path))
        with torch.device("meta"):
            build_model(cfg.updated({"model.pretrained": False}), comp.num_classes)
    check_image_files(comp.train["path"].to_numpy(), "train")


def check_inference_inputs(comp: Competition) -> None:
    check_image_files(comp.test["path"].to_numpy(), "test")
