"""Optimisers and LR schedules from timm's factories, stepped per update (or per epoch) correctly."""

from __future__ import annotations

from typing import Any

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from torch import nn

from .config import TrainConfig

TIMM_OPT = {"adamw": "adamw", "adam": "adam", "sgd": "momentum", "nesterov": "nesterov"}


def build_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    kwargs: dict[str, Any] = {"lr": tc.lr, "weight_decay": tc.weight_decay}
    if tc.optimizer in ("sgd", "nesterov"):
        kwargs["momentum"] = tc.momentum
    return create_optimizer_v2(model, opt=TIMM_OPT[tc.optimizer], **kwargs)


class LRSchedule:
    """One interface over timm's schedulers and torch's OneCycleLR.

    ``after_update(n)`` runs after every optimiser update, ``after_epoch(epoch, metric)`` after
    validation; each underlying scheduler reacts to the one it is defined on.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, tc: TrainConfig, updates_per_epoch: int,
                 maximize: bool = True):
        self.kind = tc.scheduler
        self.scheduler: Any = None
        if self.kind == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=tc.lr, total_steps=max(1, tc.epochs * updates_per_epoch),
                pct_start=min(0.5, max(0.05, tc.warmup_epochs / max(tc.epochs, 1))))
        elif self.kind != "none":
            timm_kind = {"cosine": "cosine", "step": "step", "plateau": "plateau"}[self.kind]
            self.scheduler, _ = create_scheduler_v2(
                optimizer, sched=timm_kind, num_epochs=tc.epochs, decay_epochs=tc.step_size,
                decay_rate=tc.step_gamma, warmup_epochs=int(round(tc.warmup_epochs)), warmup_lr=tc.lr * 1e-2,
                min_lr=tc.lr * 1e-3, cooldown_epochs=0, patience_epochs=1,
                plateau_mode="max" if maximize else "min",
                step_on_epochs=self.kind != "cosine", updates_per_epoch=updates_per_epoch)

    def after_update(self, updates: int) -> None:
        if self.kind == "onecycle":
            self.scheduler.step()
        elif self.scheduler is not None:
            self.scheduler.step_update(num_updates=updates)

    def after_epoch(self, epoch: int, metric: float | None) -> None:
        """``epoch`` is the number of finished epochs."""
        if self.scheduler is not None and self.kind != "onecycle":
            self.scheduler.step(epoch, metric)

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)
