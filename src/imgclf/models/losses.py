"""Losses. Every loss takes logits [B, C] and targets as class indices [B] or soft targets [B, C]
(mixup/cutmix), so any of them combines with any sampler or mixing option."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgclf.config.schema import TrainConfig
from imgclf.errors import ConfigError


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
    if name in ("bce", "asl"):
        raise ConfigError(f"train.loss: '{name}' is multi-label only; a single-label task takes ce, focal, f1 "
                          "or weighted_ce")
    if name == "focal":
        return FocalLoss(tc.focal_gamma, smoothing)
    if name == "f1":
        return SoftF1Loss()
    weight = class_weights(class_counts) if name == "weighted_ce" else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing)


# Multi-label: logits [B, L], targets 0/1 (or mixed, in [0, 1]) [B, L]; one sigmoid per label.

def smooth_binary(target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label smoothing for independent binary labels: towards 0.5."""
    target = target.float()
    return target * (1 - smoothing) + 0.5 * smoothing if smoothing else target


class BinaryFocalLoss(nn.Module):
    """Focal-BCE: each label's BCE down-weighted by (1 - p_t)^gamma for easy examples."""

    def __init__(self, gamma: float = 2.0, smoothing: float = 0.0, pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma, self.smoothing = gamma, smoothing
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        q = smooth_binary(target, self.smoothing)
        logits = logits.float()
        bce = F.binary_cross_entropy_with_logits(logits, q, pos_weight=self.pos_weight, reduction="none")
        p = torch.sigmoid(logits)
        p_t = p * q + (1 - p) * (1 - q)
        return ((1 - p_t).pow(self.gamma) * bce).sum(dim=1).mean()


class AsymmetricLoss(nn.Module):
    """ASL (Ridnik et al., 2021): positives focused by gamma_pos, negatives by gamma_neg after shifting
    their probability down by ``clip`` (easy negatives, the bulk of a multi-label batch, then count 0)."""

    def __init__(self, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05,
                 smoothing: float = 0.0, pos_weight: torch.Tensor | None = None, eps: float = 1e-8):
        super().__init__()
        self.gamma_neg, self.gamma_pos, self.clip, self.smoothing, self.eps = gamma_neg, gamma_pos, clip, smoothing, eps
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        q = smooth_binary(target, self.smoothing)
        p = torch.sigmoid(logits.float())
        p_neg = (p - self.clip).clamp(min=0) if self.clip else p
        loss_pos = q * torch.log(p.clamp(min=self.eps)) * (1 - p).pow(self.gamma_pos)
        if self.pos_weight is not None:
            loss_pos = loss_pos * self.pos_weight
        loss_neg = (1 - q) * torch.log((1 - p_neg).clamp(min=self.eps)) * p_neg.pow(self.gamma_neg)
        return -(loss_pos + loss_neg).sum(dim=1).mean()


class SmoothedBCE(nn.Module):
    """BCE with logits, label smoothing towards 0.5 and an optional per-label positive weight;
    summed over labels (as the other multi-label losses), averaged over images."""

    def __init__(self, smoothing: float = 0.0, pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.smoothing = smoothing
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        q = smooth_binary(target, self.smoothing)
        loss = F.binary_cross_entropy_with_logits(logits.float(), q, pos_weight=self.pos_weight, reduction="none")
        return loss.sum(dim=1).mean()


def positive_weights(tc: TrainConfig, positives: np.ndarray, n_rows: int) -> torch.Tensor | None:
    """``train.pos_weight``: None, one number for every label, or (auto) negatives/positives per label
    capped at 10 (a label seen once would otherwise get a weight in the thousands)."""
    if tc.pos_weight == "none":
        return None
    if tc.pos_weight == "auto":
        pos = np.maximum(np.asarray(positives, dtype=float), 1.0)
        return torch.tensor(np.clip((n_rows - pos) / pos, 1.0, 10.0), dtype=torch.float32)
    return torch.full((len(positives),), float(tc.pos_weight))


def multilabel_loss(tc: TrainConfig, positives: np.ndarray, n_rows: int) -> nn.Module:
    """``train.loss`` for a multi-label task: ce/bce -> BCE, focal -> focal-BCE, asl -> ASL."""
    weight = positive_weights(tc, positives, n_rows)
    if tc.loss in ("ce", "bce"):
        return SmoothedBCE(tc.label_smoothing, weight)
    if tc.loss == "focal":
        return BinaryFocalLoss(tc.focal_gamma, tc.label_smoothing, weight)
    if tc.loss == "asl":
        return AsymmetricLoss(tc.asl_gamma_neg, tc.asl_gamma_pos, tc.asl_clip, tc.label_smoothing, weight)
    raise ConfigError(f"train.loss: '{tc.loss}' is single-label only; a multi-label task takes bce, focal or asl "
                      "(train.pos_weight for rare labels)")


class DistillationLoss(nn.Module):
    """Knowledge distillation (Hinton et al.): ``alpha`` * CE to the hard labels + (1 - ``alpha``) *
    T^2 * KL(teacher_T || student_T). Targets are [B, 2C]: the hard one-hot (all zeros for an
    unlabelled test image, which then only learns from the teacher) and the teacher's probabilities
    at temperature T; T^2 keeps the soft term's gradients on the hard term's scale."""

    def __init__(self, num_classes: int, alpha: float, temperature: float):
        super().__init__()
        self.num_classes, self.alpha, self.temperature = num_classes, alpha, temperature

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        hard, teacher = target[:, :self.num_classes], target[:, self.num_classes:]
        logits = logits.float()
        labelled = hard.sum(dim=1) > 0
        ce = -(hard * F.log_softmax(logits, dim=1)).sum(dim=1)
        hard_loss = ce[labelled].mean() if labelled.any() else logits.sum() * 0
        log_student = F.log_softmax(logits / self.temperature, dim=1)
        kl = F.kl_div(log_student, teacher, reduction="batchmean")
        return self.alpha * hard_loss + (1 - self.alpha) * self.temperature ** 2 * kl
