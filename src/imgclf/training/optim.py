"""Optimisers and LR schedules from timm's factories, stepped per update (or per epoch) correctly."""

from __future__ import annotations

import math
from typing import Any

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from torch import nn

from imgclf.config.schema import TrainConfig

TIMM_OPT = {"adamw": "adamw", "adam": "adam", "sgd": "momentum", "nesterov": "nesterov"}


def build_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    # fused: one kernel over every tensor of a group. torch defaults to a Python loop on CPU (27 ms a
    # step for resnet10t on one thread), foreach takes 18-24 ms and fused 5 (SGD 7.5 -> 2.4 ms):
    # at batch 16 and 32 px that was a quarter of each training step (2026-12-07).
    kwargs: dict[str, Any] = {"lr": tc.lr, "weight_decay": tc.weight_decay, "fused": True}
    if tc.optimizer in ("sgd", "nesterov"):
        kwargs["momentum"] = tc.momentum
    return create_optimizer_v2(model, opt=TIMM_OPT[tc.optimizer], **kwargs)


class LRSchedule:
    """One interface over timm's cosine/step schedulers and torch's OneCycleLR/ReduceLROnPlateau.

    cosine and onecycle move the LR after every optimiser update, step and plateau once per epoch.
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
        elif self.kind == "plateau":
            self.scheduler = WarmupPlateau(optimizer, tc, maximize)
        elif self.kind != "none":
            per_update = self.kind == "cosine"
            self.scheduler, _ = create_scheduler_v2(
                optimizer, sched=self.kind, num_epochs=tc.epochs, decay_epochs=tc.step_size,
                decay_rate=tc.step_gamma, min_lr=tc.lr * 1e-3, cooldown_epochs=0,
                # per-update schedules take fractional warmup (0.5 epoch = half the updates of one)
                warmup_epochs=tc.warmup_epochs if per_update else int(round(tc.warmup_epochs)),
                warmup_lr=tc.lr * 1e-2, step_on_epochs=not per_update, updates_per_epoch=updates_per_epoch)

    def after_update(self, updates: int) -> None:
        if self.kind == "onecycle":
            # OneCycleLR raises past its last step; the schedule is over by then anyway
            if self.scheduler.last_epoch < self.scheduler.total_steps:
                self.scheduler.step()
        elif self.kind in ("cosine", "step"):
            self.scheduler.step_update(num_updates=updates)

    def after_epoch(self, epoch: int, metric: float | None) -> None:
        """``epoch`` is the number of finished epochs; ``metric`` the validation score (plateau)."""
        if self.scheduler is not None and self.kind != "onecycle":
            self.scheduler.step(epoch, metric)

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)


class WarmupPlateau:
    """Linear warmup over whole epochs, then torch's ReduceLROnPlateau on the validation score.

    timm's PlateauLRScheduler is deprecated and saves only part of its state (not the patience
    or cooldown counters), so a resumed run would decay at other epochs than an uninterrupted one.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, tc: TrainConfig, maximize: bool):
        self.optimizer = optimizer
        self.warmup = int(round(tc.warmup_epochs))
        self.base_lr, self.warmup_lr = tc.lr, tc.lr * 1e-2
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if maximize else "min", factor=tc.step_gamma, patience=1,
            min_lr=tc.lr * 1e-3)
        if self.warmup:
            self._set_lr(self.warmup_lr)

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, epoch: int, metric: float | None) -> None:
        if epoch <= self.warmup:
            self._set_lr(self.warmup_lr + epoch * (self.base_lr - self.warmup_lr) / self.warmup)
        elif metric is not None and math.isfinite(metric):
            self.plateau.step(metric)

    def state_dict(self) -> dict[str, Any]:
        return {"plateau": self.plateau.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau.load_state_dict(state["plateau"])
