"""Checks a stage makes before it writes anything, so that bad input fails in seconds with one
``error:`` line, not after minutes of training, and leaves no new artefact behind."""

from __future__ import annotations

from pathlib import Path

import torch

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.images import check_image_files
from imgclf.errors import ConfigError
from imgclf.models.backbone import load_state_file
from imgclf.models.factory import build_model
from imgclf.models.ordinal import output_width


def check_training_inputs(cfg: Config, comp: Competition) -> None:
    """The model can be built (a known timm name and arguments, pretrained weights reachable or in
    the cache, a readable ``model.pretrained_path``) and every train image is a complete image file.

    Without hub weights the model is built on the meta device: the check costs no weight
    initialisation, so the model is really built once, by the first fold."""
    if comp.multi_label:
        _check_multilabel_options(cfg)
    if comp.continuous:
        _check_continuous_options(cfg, comp)
    if cfg.model.pretrained and cfg.model.pretrained_path is None:
        build_model(cfg, output_width(cfg, comp))  # the download (or cache lookup) is what is checked
    else:
        if cfg.model.pretrained_path is not None and cfg.model.pretrained:
            load_state_file(Path(cfg.model.pretrained_path))
        with torch.device("meta"):
            build_model(cfg.updated({"model.pretrained": False}), output_width(cfg, comp))
    check_image_files(comp.train["path"].to_numpy(), "train")


def _check_multilabel_options(cfg: Config) -> None:
    if cfg.model.heads != "single":
        raise ConfigError(f"model.heads: '{cfg.model.heads}' is the mask competition's model; a multi-label "
                          "task takes model.heads=single")
    if cfg.train.sampler == "weighted":
        raise ConfigError("train.sampler: 'weighted' balances classes of a single-label task; for rare "
                          "labels of a multi-label task use train.pos_weight=auto")
    if cfg.train.loss in ("f1", "weighted_ce"):
        raise ConfigError(f"train.loss: '{cfg.train.loss}' is single-label only; a multi-label task takes "
                          "bce, focal or asl")


def _check_continuous_options(cfg: Config, comp: Competition) -> None:
    if cfg.model.heads != "single":
        raise ConfigError(f"model.heads: '{cfg.model.heads}' is the mask competition's model; a {comp.task} "
                          "task takes model.heads=single")
    if cfg.train.mixup_alpha or cfg.train.cutmix_alpha:
        raise ConfigError(f"train.mixup_alpha/train.cutmix_alpha: mixing is not implemented for a "
                          f"{comp.task} task; set both to 0")


def check_inference_inputs(comp: Competition) -> None:
    check_image_files(comp.test["path"].to_numpy(), "test")
