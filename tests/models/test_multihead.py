"""The three-head mask model and its loss: exact composition and marginals, per-head losses, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.utils import ModelEmaV3
from torch import nn

from imgclf.config.loading import load_config
from imgclf.errors import ConfigError
from imgclf.models.backbone import norm_stats, set_backbone_frozen
from imgclf.models.factory import build_loss, build_model
from imgclf.models.losses import FocalLoss, SoftF1Loss, class_weights
from imgclf.models.multihead import (
    MaskHeadLoss,
    MaskHeadModel,
    compose_log_probs,
    head_log_probs,
    head_targets,
)
from tests.helpers.datasets import draw_mask_image
from tests.helpers.runs import FAST


def _cfg(*overrides: str):
    return load_config(None, [*FAST, "model.heads=mask", *overrides])


def _head_logits(batch: int = 5, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, n, generator=g) * 3 for n in (3, 2, 3)]


def test_composed_probability_is_the_product_of_heads() -> None:
    logits = _head_logits()
    probs = compose_log_probs(logits).exp()
    assert probs.shape == (5, 18)
    torch.testing.assert_close(probs.sum(1), torch.ones(5))
    pm, pg, pa = (F.softmax(h, dim=1) for h in logits)
    for m in range(3):
        for g in range(2):
            for a in range(3):
                torch.testing.assert_close(probs[:, m * 6 + g * 3 + a], pm[:, m] * pg[:, g] * pa[:, a])
    # Softmax of the output is the composed distribution itself (the pipeline applies softmax).
    torch.testing.assert_close(F.softmax(compose_log_probs(logits), dim=1), probs)


def test_marginals_are_exact() -> None:
    logits = _head_logits(seed=1)
    for got, head in zip(head_log_probs(compose_log_probs(logits)), logits, strict=True):
        torch.testing.assert_close(got, F.log_softmax(head, dim=1))
    # For any 18-way distribution (not only factorised ones), the marginals are sums over the labels.
    p = torch.softmax(torch.randn(4, 18, generator=torch.Generator().manual_seed(2)), dim=1)
    labels = np.arange(18)
    mask, gender, age = labels // 6, (labels // 3) % 2, labels % 3
    for got, attribute, size in zip(head_log_probs(p.log()), (mask, gender, age), (3, 2, 3), strict=True):
        want = torch.stack([p[:, torch.from_numpy(attribute == k)].sum(1) for k in range(size)], dim=1)
        torch.testing.assert_close(got.exp(), want)


def test_head_targets_from_indices_and_mixup() -> None:
    target = torch.tensor([0, 7, 13, 17, 2])
    mask, gender, age = head_targets(target)
    assert mask.tolist() == [0, 1, 2, 2, 0] and gender.tolist() == [0, 0, 0, 1, 0] and age.tolist() == [0, 1, 1, 2, 2]
    onehot = F.one_hot(target, 18).float()
    for soft, hard, n in zip(head_targets(onehot), (mask, gender, age), (3, 2, 3), strict=True):
        torch.testing.assert_close(soft, F.one_hot(hard, n).float())
    mixed = 0.3 * onehot + 0.7 * onehot.flip(0)  # what timm's Mixup hands the loss
    for soft, hard, n in zip(head_targets(mixed), (mask, gender, age), (3, 2, 3), strict=True):
        torch.testing.assert_close(soft, 0.3 * F.one_hot(hard, n).float() + 0.7 * F.one_hot(hard.flip(0), n).float())


def test_loss_is_the_weighted_sum_of_head_losses() -> None:
    cfg = _cfg("model.head_loss_weights=[1.0,2.0,0.5]")
    loss_fn = build_loss(cfg, np.ones(18))
    assert isinstance(loss_fn, MaskHeadLoss)
    logits = _head_logits(batch=6, seed=3)
    target = torch.tensor([0, 5, 7, 12, 16, 17])
    heads = head_targets(target)
    want = sum(w * F.cross_entropy(h, t) for w, h, t in zip((1.0, 2.0, 0.5), logits, heads, strict=True))
    torch.testing.assert_close(loss_fn(compose_log_probs(logits), target), want)
    # Soft one-hot targets (mixup with lambda = 1) give the same loss as indices.
    torch.testing.assert_close(loss_fn(compose_log_probs(logits), F.one_hot(target, 18).float()), want)


def test_per_head_loss_choice_and_smoothing() -> None:
    counts = np.arange(1, 19, dtype=float)  # uneven, so the weighted CE's weights are not all 1
    cfg = _cfg("model.head_losses=[focal,weighted_ce,f1]", "model.head_label_smoothing=[0.1,0.0,0.2]",
               "train.focal_gamma=1.5")
    loss_fn = MaskHeadLoss(cfg, counts)
    focal, wce, f1 = loss_fn.losses
    assert isinstance(focal, FocalLoss) and focal.smoothing == 0.1 and focal.gamma == 1.5
    assert isinstance(wce, nn.CrossEntropyLoss) and isinstance(f1, SoftF1Loss)
    gender_counts = counts.reshape(3, 2, 3).sum((0, 2))
    torch.testing.assert_close(wce.weight, class_weights(gender_counts))
    logits, target = _head_logits(batch=6, seed=4), torch.tensor([1, 4, 8, 9, 14, 17])
    parts = loss_fn.per_head(compose_log_probs(logits), target)
    heads = head_targets(target)
    torch.testing.assert_close(parts[0], FocalLoss(1.5, 0.1)(logits[0], heads[0]))
    torch.testing.assert_close(parts[1], F.cross_entropy(logits[1], heads[1], weight=class_weights(gender_counts)))
    torch.testing.assert_close(parts[2], SoftF1Loss()(logits[2], heads[2]))
    # Without per-head settings every head uses train.loss / train.label_smoothing.
    default = MaskHeadLoss(_cfg("train.label_smoothing=0.05"), counts)
    assert all(isinstance(h, nn.CrossEntropyLoss) and h.label_smoothing == 0.05 for h in default.losses)


@pytest.mark.parametrize("override", ["model.head_label_smoothing=[0.1,0.1,1.5]", "model.head_losses=[ce,ce,dice]",
                                      "model.head_losses=[ce,ce]"])
def test_bad_head_settings_are_config_errors(override: str) -> None:
    with pytest.raises(ConfigError, match="model.head_"):
        _cfg(override)


def test_model_with_timm_backbone_freeze_ema_channels_last() -> None:
    torch.manual_seed(0)
    model = build_model(_cfg("model.drop_rate=0.3"), 18)
    assert isinstance(model, MaskHeadModel)
    assert norm_stats(model)[0] == tuple(model.backbone.pretrained_cfg["mean"])
    heads = model.get_classifier()
    assert isinstance(heads, nn.ModuleList) and [h[-1].out_features for h in heads] == [3, 2, 3]
    assert all(h[0].p == 0.3 for h in heads)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    out = model(x)
    assert out.shape == (4, 18)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(4))
    last = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(last, out, rtol=1e-4, atol=1e-4)
    set_backbone_frozen(model, True)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in heads.parameters()}
    set_backbone_frozen(model, False)
    ema = ModelEmaV3(model, decay=0.9)  # deep-copies the model
    model.train()
    model(x).mean().backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    ema.update(model, step=1)
    assert ema.module is not model and ema.module(x).shape == (4, 18)
    rebuilt = build_model(_cfg("model.drop_rate=0.3"), 18)
    rebuilt.load_state_dict(model.state_dict())  # checkpoints round-trip through build_model
    with pytest.raises(ConfigError, match="18 classes"):
        MaskHeadModel(_cfg(), num_classes=10)


def test_loss_decreases_on_learnable_images(one_thread) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(18), 3)
    images = np.stack([draw_mask_image(k // 6, (k // 3) % 2, k % 3, rng, side=16)[..., ::-1] for k in labels])
    x = (torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float() - 127.5) / 64
    y = torch.from_numpy(labels)
    torch.manual_seed(0)
    cfg = _cfg()
    model, loss_fn = MaskHeadModel(cfg), MaskHeadLoss(cfg, np.bincount(labels, minlength=18))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(15):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert losses[-1] < 0.25 * losses[0], losses
    assert accuracy > 0.8, accuracy
