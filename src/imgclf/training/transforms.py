"""Augmentation pipelines (albumentations) and TTA views (batched tensor ops).

Images reach the pipelines already resized to the training side (by the decoded cache or the
dataset), stay uint8 through augmentation and are normalised on the device, which keeps the
CPU data path cheap and lets CUDA do the float work.
"""

from __future__ import annotations

import albumentations as A
import torch
import torch.nn.functional as F

from imgclf.config.schema import AugmentConfig

TTA_VIEWS = ("identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose", "scale_up", "scale_down")


def train_transform(aug: AugmentConfig, size: int, seed: int | None = None) -> A.Compose:
    steps: list[A.BasicTransform] = []
    # a view left null (not yet decided by the plan's probe) is off
    if aug.hflip:
        steps.append(A.HorizontalFlip(p=aug.hflip))
    if aug.vflip:
        steps.append(A.VerticalFlip(p=aug.vflip))
    if aug.rot90:
        steps.append(A.RandomRotate90(p=aug.rot90))
    if aug.transpose:
        steps.append(A.Transpose(p=aug.transpose))
    if aug.affine_p and (aug.rotate_limit or aug.shift_limit or aug.scale_limit):
        steps.append(A.Affine(
            scale=(1 - aug.scale_limit, 1 + aug.scale_limit),
            translate_percent=(-aug.shift_limit, aug.shift_limit),
            rotate=(-aug.rotate_limit, aug.rotate_limit),
            border_mode=0, p=aug.affine_p))
    if aug.color_jitter:
        s = aug.color_jitter
        steps.append(A.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(0.5, s / 4), p=0.8))
    if aug.coarse_dropout:
        steps.append(A.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(0.1, 0.25),
                                     hole_width_range=(0.1, 0.25), p=aug.coarse_dropout))
    return A.Compose(steps, seed=seed)


def _rescale(batch: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom in (factor > 1: resize up, centre crop) or out (resize down, reflect-pad) at equal size."""
    side = batch.shape[-1]
    new = max(2, int(round(side * factor)))
    resized = F.interpolate(batch, size=(new, new), mode="bilinear", align_corners=False)
    if new >= side:
        start = (new - side) // 2
        return resized[..., start:start + side, start:start + side]
    pad = side - new
    return F.pad(resized, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2), mode="replicate")


def apply_view(batch: torch.Tensor, view: str) -> torch.Tensor:
    """A TTA view of an NCHW float batch."""
    if view == "identity":
        return batch
    if view == "hflip":
        return batch.flip(-1)
    if view == "vflip":
        return batch.flip(-2)
    if view == "rot90":
        return batch.rot90(1, dims=(-2, -1))
    if view == "rot180":
        return batch.rot90(2, dims=(-2, -1))
    if view == "rot270":
        return batch.rot90(3, dims=(-2, -1))
    if view == "transpose":
        return batch.transpose(-2, -1)
    if view == "scale_up":
        return _rescale(batch, 1.15)
    if view == "scale_down":
        return _rescale(batch, 0.87)
    raise ValueError(f"unknown TTA view {view!r}")
