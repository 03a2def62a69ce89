"""Multi-label losses against torch's own BCE, and what each option changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imgclf.config.schema import TrainConfig
from imgclf.errors import ConfigError
from imgclf.models.losses import AsymmetricLoss, BinaryFocalLoss, multilabel_loss, positive_weights


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 6, generator=gen)
    target = (torch.rand(8, 6, generator=gen) < 0.3).float()
    return logits, target


def _bce_sum(logits: torch.Tensor, target: torch.Tensor, **kw) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none", **kw).sum(1).mean()


def test_bce_is_the_default_and_matches_torch(batch) -> None:
    logits, target = batch
    loss = multilabel_loss(TrainConfig(), target.sum(0).numpy(), 8)
    assert loss(logits, target).item() == pytest.approx(_bce_sum(logits, target).item(), rel=1e-6)
    smooth = multilabel_loss(TrainConfig(label_smoothing=0.2), target.sum(0).numpy(), 8)
    assert smooth(logits, target).item() == pytest.approx(_bce_sum(logits, target * 0.8 + 0.1).item(), rel=1e-6)


def test_focal_and_asl_reduce_to_bce_without_focusing(batch) -> None:
    logits, target = batch
    bce = _bce_sum(logits, target).item()
    assert BinaryFocalLoss(gamma=0.0)(logits, target).item() == pytest.approx(bce, rel=1e-5)
    assert AsymmetricLoss(gamma_neg=0.0, gamma_pos=0.0, clip=0.0)(logits, target).item() == pytest.approx(bce, rel=1e-5)
    # focusing only ever lowers each term; ASL's clip drops easy negatives entirely
    assert BinaryFocalLoss(gamma=2.0)(logits, target).item() < bce
    assert AsymmetricLoss()(logits, target).item() < bce
    easy = torch.full((1, 6), -5.0)  # p = 0.007 < clip: no negative loss at all
    assert AsymmetricLoss(clip=0.05)(easy, torch.zeros(1, 6)).item() == 0.0


def test_pos_weight_auto_and_the_loss_names(batch) -> None:
    logits, target = batch
    positives = np.array([1, 2, 4, 0, 8, 3])
    weights = positive_weights(TrainConfig(pos_weight="auto"), positives, 8).numpy()
    np.testing.assert_allclose(weights, np.clip((8 - np.maximum(positives, 1)) / np.maximum(positives, 1), 1, 10))
    weighted = multilabel_loss(TrainConfig(pos_weight=3.0), positives, 8)
    expected = _bce_sum(logits, target, pos_weight=torch.full((6,), 3.0)).item()
    assert weighted(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert isinstance(multilabel_loss(TrainConfig(loss="asl"), positives, 8), AsymmetricLoss)
    assert isinstance(multilabel_loss(TrainConfig(loss="focal"), positives, 8), BinaryFocalLoss)
    with pytest.raises(ConfigError, match="train.loss: 'weighted_ce' is single-label only"):
        multilabel_loss(TrainConfig(loss="weighted_ce"), positives, 8)
