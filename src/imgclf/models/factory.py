"""The model and the loss a config asks for: a timm model, or the mask competition's three-head
model and its loss."""

from __future__ import annotations

import numpy as np
from torch import nn

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.errors import ConfigError
from imgclf.models.backbone import create_timm_model
from imgclf.models.losses import multilabel_loss, named_loss
from imgclf.models.ordinal import continuous_loss
from imgclf.models.multihead import MaskHeadLoss, MaskHeadModel


def build_model(cfg: Config, num_classes: int) -> nn.Module:
    """``model.heads``: ``single`` is a timm model with ``num_classes`` outputs, ``mask`` the three-head model."""
    if cfg.model.heads == "mask":
        return MaskHeadModel(cfg, num_classes)
    return create_timm_model(cfg, num_classes)


def build_loss(cfg: Config, class_counts: np.ndarray, n_rows: int | None = None,
               comp: Competition | None = None) -> nn.Module:
    """``train.loss`` (with the class counts for weighted losses), or one loss per head for the mask model.
    ``n_rows`` given: a multi-label task, ``class_counts`` then being the positives per label;
    ``comp`` of an ordinal or regression task: its head's loss."""
    if comp is not None and comp.continuous:
        return continuous_loss(cfg, comp)
    if n_rows is not None:
        if cfg.model.heads == "mask":
            raise ConfigError("model.heads: 'mask' is the mask competition's single-label model; "
                              "a multi-label task takes model.heads=single")
        return multilabel_loss(cfg.train, class_counts, n_rows)
    if cfg.model.heads == "mask":
        return MaskHeadLoss(cfg, class_counts)
    return named_loss(cfg.train.loss, cfg.train, class_counts)
