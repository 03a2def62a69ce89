"""Every loss against its definition, with soft (mixup) targets, and training on a learnable set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imgclf.models.factory import build_loss
from imgclf.models.losses import FocalLoss, SoftF1Loss, class_weights
from tests.helpers.trainkit import fit, tiny_config

LOSSES = {
    "ce": ["train.loss=ce"],
    "label_smoothing": ["train.loss=ce", "train.label_smoothing=0.1"],
    "focal": ["train.loss=focal"],
    "f1": ["train.loss=f1"],
    "weighted_ce": ["train.loss=weighted_ce"],
}
COUNTS = np.array([30, 10, 5])
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(12, 3, generator=gen) * 2, torch.arange(12) % 3


def test_ce_and_label_smoothing_are_torch_cross_entropy(batch):
    logits, y = batch
    assert build_loss(tiny_config(*LOSSES["ce"]), COUNTS)(logits, y) == pytest.approx(
        F.cross_entropy(logits, y).item())
    smoothed = build_loss(tiny_config(*LOSSES["label_smoothing"]), COUNTS)(logits, y)
    assert smoothed == pytest.approx(F.cross_entropy(logits, y, label_smoothing=0.1).item())
    assert smoothed != pytest.approx(F.cross_entropy(logits, y).item())


def test_focal_loss_definition(batch):
    logits, y = batch
    assert FocalLoss(gamma=0.0)(logits, y) == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    p_t = F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    manual = (-(1 - p_t) ** 2 * p_t.log()).mean()
    focal = build_loss(tiny_config("train.loss=focal", "train.focal_gamma=2"), COUNTS)
    assert focal(logits, y) == pytest.approx(manual.item(), rel=1e-5)
    # confident correct examples are down-weighted much more than by cross-entropy
    easy = F.one_hot(y, 3).float() * 6
    assert focal(easy, y) < 0.01 * F.cross_entropy(easy, y)


def test_soft_f1_loss_is_one_minus_soft_macro_f1(batch):
    _, y = batch
    loss = SoftF1Loss()
    assert loss(F.one_hot(y, 3).float() * 30, y) < 1e-3  # perfect and confident: F1 = 1
    assert loss(torch.zeros(12, 3), y) == pytest.approx(1 - 1 / 3, abs=1e-4)  # uniform: F1 = 1/3 per class
    wrong = F.one_hot((y + 1) % 3, 3).float() * 30
    assert loss(wrong, y) > 0.99


def test_weighted_ce_uses_inverse_class_frequency(batch):
    logits, y = batch
    weights = class_weights(COUNTS)
    assert weights[2] > weights[1] > weights[0]
    assert weights.mean() == pytest.approx(1.0)
    assert weights[2] / weights[0] == pytest.approx(30 / 5)
    loss = build_loss(tiny_config(*LOSSES["weighted_ce"]), COUNTS)
    assert loss(logits, y) == pytest.approx(F.cross_entropy(logits, y, weight=weights).item())


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_takes_soft_targets(name, batch):
    logits, y = batch
    logits = logits.clone().requires_grad_(True)
    soft = 0.7 * F.one_hot(y, 3).float() + 0.3 * F.one_hot((y + 1) % 3, 3).float()  # as mixup makes them
    loss = build_loss(tiny_config(*LOSSES[name]), COUNTS)(logits, soft)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    one_hot = build_loss(tiny_config(*LOSSES[name]), COUNTS)(logits, F.one_hot(y, 3).float())
    if name != "label_smoothing":  # a one-hot soft target is the hard target (smoothing applies to both)
        assert one_hot.item() == pytest.approx(build_loss(tiny_config(*LOSSES[name]), COUNTS)(logits, y).item(),
                                               rel=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_trains_a_model(name):
    result = fit(tiny_config(*LOSSES[name]), epochs=4, n=64)
    losses = result["losses"]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses
    assert result["accuracy"] > 0.8
