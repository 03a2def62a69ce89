"""Heads and losses of ordinal and regression tasks, and the decoding of their outputs to one number.

Heads (``model.ordinal_head``): ``regression`` (one output, the grade or the standardised value;
SmoothL1 or MSE), ``classification`` (one logit per grade, cross-entropy; decoded as the expected
grade under the softmax) and ``coral`` (CORAL, Cao et al. 2020: C-1 cumulative logits P(grade > k),
binary cross-entropy each; decoded as the sum of the probabilities, the expected grade).
``auto`` is ``regression``: on the APTOS-like test fixture its OOF QWK after cut-points was the best
of the three (figures in the README's ordinal section). A regression task always takes
``regression``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgclf.config.schema import Config
from imgclf.data.competition import Competition

AUTO_HEAD = "regression"


def head_of(cfg: Config, comp: Competition) -> str:
    if comp.task == "regression":
        return "regression"
    return AUTO_HEAD if cfg.model.ordinal_head == "auto" else cfg.model.ordinal_head


def output_width(cfg: Config, comp: Competition) -> int:
    """Outputs of the model: classes, labels, or one number (grades: a logit per grade or threshold)."""
    if not comp.continuous:
        return comp.num_classes
    head = head_of(cfg, comp)
    return {"regression": 1, "classification": comp.num_classes, "coral": comp.num_classes - 1}[head]


def target_scale(comp: Competition) -> tuple[float, float]:
    """(centre, scale) of the regression head's output: a regression target is standardised (a
    PetFinder score of 0-100 would otherwise start far from a zero-initialised head)."""
    if comp.task != "regression":
        return 0.0, 1.0
    values = np.asarray(comp.labels, dtype=float)
    return float(values.mean()), float(values.std() or 1.0)


def decode(outputs: np.ndarray, head: str, centre: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Model outputs [n, K] -> one continuous prediction [n] (grade index units, or target units)."""
    z = np.asarray(outputs, dtype=np.float64)
    if head == "regression":
        return centre + scale * z[:, 0]
    if head == "classification":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)) @ np.arange(z.shape[1])
    return (1.0 / (1.0 + np.exp(-z))).sum(axis=1)


def decode_views(per_view: np.ndarray, head: str, centre: float, scale: float) -> np.ndarray:
    """TTA: each view (views, rows, K) decoded to a number, then the numbers averaged."""
    return np.mean([decode(v, head, centre, scale) for v in per_view], axis=0)


class RegressionLoss(nn.Module):
    """SmoothL1 (default: robust to a mislabelled grade) or MSE between the one output and the
    standardised target."""

    def __init__(self, kind: str = "smooth_l1", centre: float = 0.0, scale: float = 1.0):
        super().__init__()
        self.kind, self.centre, self.scale = kind, centre, scale

    def forward(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        z = (target.float() - self.centre) / self.scale
        pred = outputs.float()[:, 0]
        return F.mse_loss(pred, z) if self.kind == "mse" else F.smooth_l1_loss(pred, z)


class CoralLoss(nn.Module):
    """Binary cross-entropy of each cumulative logit k against [grade > k], summed over thresholds."""

    def forward(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = torch.arange(outputs.shape[1], device=outputs.device)
        levels = (target.long().unsqueeze(1) > k).float()
        return F.binary_cross_entropy_with_logits(outputs.float(), levels, reduction="none").sum(1).mean()


def continuous_loss(cfg: Config, comp: Competition) -> nn.Module:
    head = head_of(cfg, comp)
    if head == "regression":
        return RegressionLoss(cfg.train.regression_loss, *target_scale(comp))
    if head == "coral":
        return CoralLoss()
    return nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)


def validation_loss(head: str, outputs: np.ndarray, labels: np.ndarray, centre: float, scale: float) -> float:
    """The mean squared error of the decoded predictions, in the target's units: one scale for every head."""
    return float(np.mean((decode(outputs, head, centre, scale) - np.asarray(labels, dtype=float)) ** 2))
