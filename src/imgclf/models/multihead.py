"""Multi-head option for the mask competition: one timm backbone, three heads (mask 3, gender 2, age 3).

The model's output is the 18-class *log-probability* ``log p(mask) + log p(gender) + log p(age)``
laid out as ``mask*6 + gender*3 + age``: its softmax is exactly the product of the head
probabilities, so metrics, OOF files, TTA and soft voting with single-head 18-class models use it
unchanged. The loss marginalises those 18 log-probabilities back to each head (exact, since the
composed distribution factorises) and sums one loss per head.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgclf.config.schema import Config
from imgclf.data.mask import HEAD_SIZES, NUM_CLASSES
from imgclf.errors import ConfigError
from imgclf.models.backbone import create_timm_model
from imgclf.models.losses import named_loss

HEAD_NAMES = ("mask", "gender", "age")


def compose_log_probs(head_logits: list[torch.Tensor]) -> torch.Tensor:
    """[B,3], [B,2], [B,3] logits -> [B,18] log of the product of the head softmaxes."""
    mask, gender, age = (F.log_softmax(h.float(), dim=1) for h in head_logits)
    grid = mask[:, :, None, None] + gender[:, None, :, None] + age[:, None, None, :]
    return grid.flatten(1)


def head_log_probs(log_probs: torch.Tensor) -> list[torch.Tensor]:
    """[B,18] log-probabilities -> each head's marginal log-probabilities (logsumexp over the others)."""
    grid = log_probs.float().view(-1, *HEAD_SIZES)
    grid = grid - grid.flatten(1).logsumexp(1).view(-1, 1, 1, 1)  # accept unnormalised scores too
    return [grid.logsumexp((2, 3)), grid.logsumexp((1, 3)), grid.logsumexp((1, 2))]


def head_targets(target: torch.Tensor) -> list[torch.Tensor]:
    """18-class targets -> per-head targets: indices stay indices, soft [B,18] (mixup) become marginals."""
    if target.dim() == 1:
        return [target // 6, (target // 3) % 2, target % 3]
    grid = target.float().view(-1, *HEAD_SIZES)
    return [grid.sum((2, 3)), grid.sum((1, 3)), grid.sum((1, 2))]


class MaskHeadModel(nn.Module):
    def __init__(self, cfg: Config, num_classes: int = NUM_CLASSES):
        super().__init__()
        if num_classes != NUM_CLASSES:
            raise ConfigError(f"model.heads=mask needs the mask competition's {NUM_CLASSES} classes; "
                              f"this data has {num_classes} (set model.heads=single)")
        # The heads own the dropout (one mask per head); timm would otherwise drop the pooled features too.
        self.backbone = create_timm_model(cfg.updated({"model.drop_rate": 0.0}), 0)
        width = self.backbone.num_features
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Dropout(cfg.model.drop_rate), nn.Linear(width, n)) for n in HEAD_SIZES)

    def get_classifier(self) -> nn.ModuleList:
        return self.heads

    def head_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.backbone(x)
        return [head(features) for head in self.heads]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return compose_log_probs(self.head_logits(x))


class MaskHeadLoss(nn.Module):
    """``sum_h weight_h * loss_h(head log-probs, head target)`` over the mask, gender and age heads."""

    def __init__(self, cfg: Config, class_counts: np.ndarray):
        super().__init__()
        mc, tc = cfg.model, cfg.train
        names = mc.head_losses or (tc.loss,) * 3
        smoothing = mc.head_label_smoothing or (tc.label_smoothing,) * 3
        counts = np.asarray(class_counts, dtype=float).reshape(HEAD_SIZES)
        marginal_counts = [counts.sum((1, 2)), counts.sum((0, 2)), counts.sum((0, 1))]
        self.losses = nn.ModuleList(named_loss(name, tc, n, s)
                                    for name, n, s in zip(names, marginal_counts, smoothing, strict=True))
        self.weights = tuple(float(w) for w in mc.head_loss_weights)

    def per_head(self, log_probs: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        return [loss(lp, t) for loss, lp, t in zip(self.losses, head_log_probs(log_probs), head_targets(target),
                                                    strict=True)]

    def forward(self, log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(w * loss for w, loss in zip(self.weights, self.per_head(log_probs, target), strict=True))
