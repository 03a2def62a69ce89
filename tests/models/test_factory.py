"""The factory builds what model.heads asks for, with the matching loss."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imgclf.models.factory import build_loss, build_model
from imgclf.models.losses import FocalLoss
from imgclf.models.multihead import MaskHeadLoss, MaskHeadModel
from tests.helpers.trainkit import tiny_config


def test_single_head_is_a_timm_model_with_the_configured_loss() -> None:
    cfg = tiny_config("train.loss=focal")
    model = build_model(cfg, 5)
    assert not isinstance(model, MaskHeadModel) and model(torch.zeros(2, 3, 16, 16)).shape == (2, 5)
    assert isinstance(build_loss(cfg, np.ones(5)), FocalLoss)
    weighted = build_loss(tiny_config("train.loss=weighted_ce"), np.array([9, 1, 0]))
    assert isinstance(weighted, nn.CrossEntropyLoss) and weighted.weight.tolist()[2] == 0.0


def test_mask_heads_get_the_three_head_model_and_loss() -> None:
    cfg = tiny_config("model.heads=mask")
    assert isinstance(build_model(cfg, 18), MaskHeadModel)
    assert isinstance(build_loss(cfg, np.ones(18)), MaskHeadLoss)
