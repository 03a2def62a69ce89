"""Losses. Every loss takes logits [B, C] and targets as class indices [B] or soft targets [B, C]
(mixup/cutmix), so any of them combines with any sampler or mixing option."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgclf.config.schema import TrainConfig


def soft_targets(target: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    if target.dim() == 2:
        return target
    onehot = F.one_hot(target, num_classes).float()
    return onehot * (1 - smoothing) + smoothing / num_classes if smoothing else onehot


class FocalLoss(nn.Module):
    """Focal loss (Lin et al.): cross-entropy down-weighted by (1 - p_t)^gamma for easy examples."""

    def __init__(self, gamma: float = 2.0, smoothing: float = 0.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma, self.smoothing = gamma, smoothing
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1)
        q = soft_targets(target, logits.shape[1], self.smoothing)
        per_class = -q * (1 - log_p.exp()).pow(self.gamma) * log_p
        if self.weight is not None:
            per_class = per_class * self.weight
        return per_class.sum(dim=1).mean()


class SoftF1Loss(nn.Module):
    """1 - macro-F1 computed on probabilities (differentiable), for macro-F1 scored competitions."""

    def __init__(self, eps: float = 1e-7):
        super().__init__()
        self.eps = eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = F.softmax(logits.float(), dim=1)
        q = soft_targets(target, logits.shape[1])
        tp = (p * q).sum(0)
        fp = (p * (1 - q)).sum(0)
        fn = ((1 - p) * q).sum(0)
        f1 = 2 * tp / (2 * tp + fp + fn + self.eps)
        return 1 - f1.mean()


def class_weights(class_counts: np.ndarray) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (absent classes get weight 0)."""
    counts = np.asarray(class_counts, dtype=float)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(counts), 0.0)
    return torch.tensor(weights / weights[counts > 0].mean(), dtype=torch.float32)


def named_loss(name: str, tc: TrainConfig, class_counts: np.ndarray, smoothing: float | None = None) -> nn.Module:
    """One loss of ``train.loss``'s vocabulary (the multi-head loss builds one per head with it)."""
    smoothing = tc.label_smoothing if smoothing is None else smoothing
    if name == "focal":
        return FocalLoss(tc.focal_gamma, smoothing)
    if name == "f1":
        return SoftF1Loss()
    weight = class_weights(class_counts) if name == "weighted_ce" else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing)
