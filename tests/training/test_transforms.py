"""Augmentation pipelines built from config, and TTA views of a batch."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

from imgclf.planning.views import tta_views
from imgclf.training.transforms import TTA_VIEWS, apply_view, train_transform
from tests.helpers.trainkit import SIDE, class_images, tiny_config


def test_train_transform_follows_the_config():
    names = [type(t).__name__ for t in train_transform(tiny_config().augment, SIDE).transforms]
    assert names == ["Affine"]  # the defaults: no flips, no colour, no dropout
    cfg = tiny_config("augment.hflip=0.5", "augment.vflip=0.5", "augment.color_jitter=0.2",
                      "augment.coarse_dropout=0.5")
    names = [type(t).__name__ for t in train_transform(cfg.augment, SIDE).transforms]
    assert names == ["HorizontalFlip", "VerticalFlip", "Affine", "ColorJitter", "CoarseDropout"]
    assert train_transform(tiny_config("augment.affine_p=0").augment, SIDE).transforms == []


def test_every_augmentation_keeps_shape_and_dtype():
    cfg = tiny_config("augment.hflip=1", "augment.vflip=1", "augment.color_jitter=0.4",
                      "augment.coarse_dropout=1", "augment.affine_p=1")
    transform = train_transform(cfg.augment, SIDE, seed=0)
    images, _ = class_images(4)
    for image in images:
        out = transform(image=image)["image"]
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.array_equal(out, image)


def test_flip_only_pipeline_is_exact():
    cfg = tiny_config("augment.hflip=1", "augment.affine_p=0")
    transform = train_transform(cfg.augment, SIDE, seed=0)
    assert isinstance(transform, A.Compose)
    images, _ = class_images(2)
    assert np.array_equal(transform(image=images[0])["image"], images[0][:, ::-1])


def test_tta_views():
    batch = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    for view in TTA_VIEWS:
        assert apply_view(batch, view).shape == batch.shape, view
    assert torch.equal(apply_view(batch, "identity"), batch)
    assert torch.equal(apply_view(apply_view(batch, "hflip"), "hflip"), batch)
    assert torch.equal(apply_view(apply_view(batch, "rot90"), "rot270"), batch)
    assert torch.equal(apply_view(apply_view(batch, "rot90"), "rot90"), apply_view(batch, "rot180"))
    assert torch.equal(apply_view(batch, "vflip")[..., 0, :], batch[..., -1, :])
    assert not torch.equal(apply_view(batch, "scale_up"), batch)
    with pytest.raises(ValueError):
        apply_view(batch, "nope")
    assert tta_views(tiny_config("infer.tta=auto")) == ["identity"]
    assert tta_views(tiny_config("infer.tta=auto", "augment.hflip=0.5")) == ["identity", "hflip"]
    assert tta_views(tiny_config("infer.tta=[identity,rot90]")) == ["identity", "rot90"]
