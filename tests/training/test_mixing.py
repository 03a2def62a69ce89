"""Mixup/CutMix: soft targets that sum to one, odd batches, and training that still learns."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch import nn

from imgclf.training.engine import (
    StepHooks,
)
from imgclf.training.mixing import make_mixer
from tests.helpers.trainkit import class_images, fit, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("mixup,cutmix", [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixup_cutmix_make_soft_targets(mixup, cutmix):
    cfg = tiny_config(f"train.mixup_alpha={mixup}", f"train.cutmix_alpha={cutmix}")
    mix = make_mixer(cfg, types.SimpleNamespace(num_classes=3, multi_label=False))
    np.random.seed(0)
    images, labels = class_images(8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(labels)
    mixed_x, soft = mix(x.clone(), y)
    assert soft.shape == (8, 3) and torch.allclose(soft.sum(1), torch.ones(8))
    assert ((soft > 0.01) & (soft < 0.99)).any()  # genuinely mixed targets
    assert not torch.equal(mixed_x, x)
    odd_x, odd_soft = mix(x[:7].clone(), y[:7])  # odd batches: all but the last image are mixed
    assert odd_soft.shape == (7, 3) and torch.equal(odd_soft[-1], nn.functional.one_hot(y[6], 3).float())
    assert torch.equal(odd_x[-1], x[6]) and not torch.equal(odd_x[:6], x[:6])


@pytest.mark.parametrize("mixing", [["train.mixup_alpha=0.4"], ["train.cutmix_alpha=1.0"],
                                    ["train.mixup_alpha=0.4", "train.cutmix_alpha=1.0", "train.loss=focal"]])
def test_mixup_cutmix_training_is_finite_and_learns(mixing):
    cfg = tiny_config(*mixing, "train.mix_prob=0.8")
    np.random.seed(0)
    result = fit(cfg, epochs=5, n=64,
                 hooks=StepHooks(mix=make_mixer(cfg, types.SimpleNamespace(num_classes=3,
                                                                              multi_label=False))))
    assert np.isfinite(result["losses"]).all()
    assert result["accuracy"] > 0.8  # on the clean images; chance is 1/3


def test_multilabel_mixing_mixes_the_label_vectors():
    """Multi-label targets are 0/1 vectors: mixup blends two images' vectors with the images' lambda."""
    cfg = tiny_config("train.mixup_alpha=0.4")
    mix = make_mixer(cfg, types.SimpleNamespace(num_classes=4, multi_label=True))
    np.random.seed(0)
    x = torch.rand(6, 3, 8, 8)
    y = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1],
                      [0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 1, 1]]).float()
    mixed_x, mixed_y = mix(x.clone(), y.clone())
    lam = float(((mixed_x - x.flip(0)) / (x - x.flip(0))).flatten()[0])
    torch.testing.assert_close(mixed_y, lam * y + (1 - lam) * y.flip(0))
    assert ((mixed_y > 0.01) & (mixed_y < 0.99)).any()
    odd_x, odd_y = mix(x[:5].clone(), y[:5].clone())  # the odd one out keeps its own vector
    assert torch.equal(odd_y[-1], y[4]) and torch.equal(odd_x[-1], x[4])
