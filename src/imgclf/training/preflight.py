"""Checks a stage makes before it writes anything, so that bad input fails in seconds with one
``error:`` line, not after minutes of training, and leaves no new artefact behind."""

from __future__ import annotations

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.images import check_image_files
from imgclf.models.factory import build_model


def check_training_inputs(cfg: Config, comp: Competition) -> None:
    """The model can be built (a known timm name, pretrained weights reachable or in the cache, a
    readable ``model.pretrained_path``) and every train image is a complete image file."""
    build_model(cfg, comp.num_classes)
    check_image_files(comp.train["path"].to_numpy(), "train")


def check_inference_inputs(comp: Competition) -> None:
    check_image_files(comp.test["path"].to_numpy(), "test")
