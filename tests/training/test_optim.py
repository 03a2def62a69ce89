"""Optimisers from timm's factory and LR schedules: values at given updates/epochs, the stepping
unit of each schedule, exact state round trips (resume), and training with each optimiser."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from imgclf.models.factory import build_loss, build_model
from imgclf.training.engine import StepHooks, train_one_epoch
from imgclf.training.optim import LRSchedule, build_optimizer
from tests.helpers.trainkit import class_images, cpu_runtime, fit, loader_of, tiny_config

pytestmark = [pytest.mark.usefixtures("one_thread"),
              # the schedule unit tests step OneCycleLR without optimiser steps, which torch warns about
              pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")]
LR = 0.1


def _sgd(lr: float = LR) -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=lr)


def _lr(opt: torch.optim.Optimizer) -> float:
    return opt.param_groups[0]["lr"]


def _schedule(opt: torch.optim.Optimizer, *overrides: str, updates_per_epoch: int = 5,
              maximize: bool = True) -> LRSchedule:
    return LRSchedule(opt, tiny_config(f"train.lr={LR}", *overrides).train, updates_per_epoch, maximize)


def test_cosine_with_warmup_steps_per_update():
    opt = _sgd()
    sched = _schedule(opt, "train.scheduler=cosine", "train.epochs=4", "train.warmup_epochs=1")
    warm, low, total = LR * 1e-2, LR * 1e-3, 20  # 4 epochs x 5 updates; warmup = 5 updates
    assert _lr(opt) == pytest.approx(warm)
    seen = {}
    for update in range(1, total + 1):
        sched.after_update(update)
        seen[update] = _lr(opt)
        if update % 5 == 0:
            sched.after_epoch(update // 5, 0.5)  # an epoch boundary must not move a per-update schedule
            assert _lr(opt) == seen[update]
    assert seen[2] == pytest.approx(warm + 2 * (LR - warm) / 5)
    for update in (5, 10, 13, 19):
        assert seen[update] == pytest.approx(low + 0.5 * (LR - low)
                                             * (1 + math.cos(math.pi * update / total)))
    assert seen[10] == pytest.approx((LR + low) / 2)
    assert seen[total] == pytest.approx(low)
    assert len(set(seen.values())) == total  # a new LR after every update


def test_fractional_warmup_counts_updates():
    opt = _sgd()
    sched = _schedule(opt, "train.scheduler=cosine", "train.epochs=4", "train.warmup_epochs=0.4")
    sched.after_update(1)  # warmup lasts 0.4 x 5 = 2 updates
    assert _lr(opt) == pytest.approx(LR * 1e-2 + (LR - LR * 1e-2) / 2)
    sched.after_update(2)
    assert _lr(opt) < LR and _lr(opt) == pytest.approx(LR * 1e-3 + 0.5 * (LR - LR * 1e-3)
                                                       * (1 + math.cos(math.pi * 2 / 20)))


def test_step_schedule_moves_per_epoch_only():
    opt = _sgd()
    sched = _schedule(opt, "train.scheduler=step", "train.epochs=6", "train.step_size=2",
                      "train.step_gamma=0.5", "train.warmup_epochs=1")
    assert _lr(opt) == pytest.approx(LR * 1e-2)  # epoch 0 is the warmup epoch
    for epoch in range(1, 7):
        for update in range(1, 6):
            sched.after_update((epoch - 1) * 5 + update)
        sched.after_epoch(epoch, 0.5)
        assert _lr(opt) == pytest.approx(LR * 0.5 ** (epoch // 2)), epoch
    opt = _sgd()
    sched = _schedule(opt, "train.scheduler=step", "train.epochs=6", "train.step_size=2",
                      "train.step_gamma=0.5", "train.warmup_epochs=0")
    for update in range(1, 30):
        sched.after_update(update)
    assert _lr(opt) == LR


@pytest.mark.parametrize("maximize", [True, False])
def test_plateau_follows_the_metric_direction(maximize):
    opt = _sgd()
    sched = _schedule(opt, "train.scheduler=plateau", "train.step_gamma=0.5", "train.warmup_epochs=0",
                      maximize=maximize)
    improving = [0.5, 0.6, 0.7, 0.8] if maximize else [0.8, 0.7, 0.6, 0.5]
    for epoch, score in enumerate(improving, 1):
        sched.after_epoch(epoch, score)
    assert _lr(opt) == LR
    sched.after_epoch(5, improving[-1])  # 1 bad epoch: within patience
    sched.after_epoch(6, float("nan"))  # an undefined score (e.g. AUC of a one-class fold) is ignored
    assert _lr(opt) == LR
    sched.after_epoch(7, improving[0])  # 2 bad epochs: decay
    assert _lr(opt) == pytest.approx(LR * 0.5)


def test_plateau_warmup_then_decay():
    opt = _sgd()
    sched = _schedule(opt, "train.scheduler=plateau", "train.warmup_epochs=2", "train.step_gamma=0.5")
    assert _lr(opt) == pytest.approx(LR * 1e-2)
    sched.after_epoch(1, 0.1)
    assert _lr(opt) == pytest.approx(LR * 1e-2 + (LR - LR * 1e-2) / 2)
    sched.after_epoch(2, 0.1)
    assert _lr(opt) == pytest.approx(LR)


def test_onecycle_steps_per_update():
    opt = _sgd()
    sched = _schedule(opt, "train.scheduler=onecycle", "train.epochs=4", "train.warmup_epochs=1")
    lrs = [_lr(opt)]
    for update in range(1, 21):
        sched.after_update(update)
        lrs.append(_lr(opt))
        if update % 5 == 0:
            sched.after_epoch(update // 5, 0.5)
            assert _lr(opt) == lrs[-1]
    peak = int(np.argmax(lrs))
    assert lrs[0] == pytest.approx(LR / 25)  # torch's default div_factor
    assert peak == 5 - 1 and lrs[peak] == pytest.approx(LR)  # pct_start = warmup/epochs = 1/4 of 20 updates
    assert all(np.diff(lrs[:peak + 1]) > 0) and all(np.diff(lrs[peak:20]) < 0)
    assert lrs[19] == pytest.approx(LR / 25 / 1e4)
    sched.after_update(21)  # one update too many (e.g. a longer last epoch) must not raise


@pytest.mark.parametrize("kind", ["cosine", "step", "plateau", "onecycle"])
def test_schedule_state_round_trip_continues_identically(kind):
    """Save mid-run, reload into a fresh optimiser+schedule (weights_only), continue: same LRs."""
    args = (f"train.scheduler={kind}", "train.epochs=6", "train.warmup_epochs=1", "train.step_size=1")
    scores = [0.5, 0.6, 0.6, 0.6, 0.55, 0.7]

    def run(opt, sched, epochs, start=0):
        out = []
        for epoch in range(start + 1, epochs + 1):
            for update in range((epoch - 1) * 5 + 1, epoch * 5 + 1):
                sched.after_update(update)
                out.append(_lr(opt))
            sched.after_epoch(epoch, scores[epoch - 1])
            out.append(_lr(opt))
        return out

    opt = _sgd()
    full = run(opt, _schedule(opt, *args), 6)
    opt = _sgd()
    sched = _schedule(opt, *args)
    first = run(opt, sched, 3)
    buffer = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "schedule": sched.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    opt2 = _sgd(lr=123.0)  # a fresh run: its own construction-time LR must be overwritten
    sched2 = _schedule(opt2, *args)
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["schedule"])
    assert first + run(opt2, sched2, 6, start=3) == full
    assert len(set(full)) > 2


@pytest.mark.parametrize("name,torch_cls,nesterov", [
    ("adamw", torch.optim.AdamW, None), ("adam", torch.optim.Adam, None),
    ("sgd", torch.optim.SGD, False), ("nesterov", torch.optim.SGD, True)])
def test_optimiser_factory(name, torch_cls, nesterov):
    model = build_model(tiny_config(), 3)
    opt = build_optimizer(model, tiny_config(f"train.optimizer={name}", "train.weight_decay=0.05").train)
    assert type(opt) is torch_cls
    if nesterov is not None:
        assert opt.param_groups[0]["nesterov"] is nesterov and opt.param_groups[0]["momentum"] == 0.9
    decays = {g["weight_decay"] for g in opt.param_groups}
    assert decays == {0.0, 0.05}  # biases and norm weights are not decayed
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(list(model.parameters()))


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd", "nesterov"])
def test_the_fused_step_matches_torchs_reference_loop(name):
    """The factory's optimiser runs as one fused kernel (3-5x faster on CPU than foreach) and moves
    the weights as torch's per-tensor loop does, weight decay groups included."""
    cfg = tiny_config(f"train.optimizer={name}", "train.weight_decay=0.05")
    fused_model, loop_model = build_model(cfg, 3), build_model(cfg, 3)
    loop_model.load_state_dict(fused_model.state_dict())
    start = [p.detach().clone() for p in fused_model.parameters()]
    fused = build_optimizer(fused_model, cfg.train)
    loop = build_optimizer(loop_model, cfg.train)
    for group in loop.param_groups:
        group.update(fused=False, foreach=False)
    assert all(g["fused"] for g in fused.param_groups)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        grads = [torch.randn(p.shape, generator=gen) for p in fused_model.parameters()]
        for model, opt in ((fused_model, fused), (loop_model, loop)):
            for p, g in zip(model.parameters(), grads, strict=True):
                p.grad = g.clone()
            opt.step()
    assert all(not torch.equal(p, q) for p, q in zip(fused_model.parameters(), start, strict=True))
    for p, q in zip(fused_model.parameters(), loop_model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,lr", [("adamw", 2e-3), ("adam", 2e-3), ("sgd", 0.05), ("nesterov", 0.05)])
def test_every_optimiser_trains_a_model(name, lr):
    result = fit(tiny_config(f"train.optimizer={name}", f"train.lr={lr}"), epochs=4, n=64)
    assert result["losses"][-1] < 0.7 * result["losses"][0], result["losses"]
    assert result["accuracy"] > 0.8


@pytest.mark.parametrize("kind,per_update", [("cosine", True), ("onecycle", True), ("step", False),
                                             ("plateau", False)])
def test_training_loop_steps_the_schedule_at_the_right_unit(kind, per_update):
    """Through the real engine: per-update schedules change the LR within an epoch, per-epoch
    schedules only at the epoch boundary."""
    cfg = tiny_config(f"train.scheduler={kind}", "train.epochs=3", "train.warmup_epochs=1",
                      "train.step_size=2")
    images, labels = class_images(48)
    model = build_model(cfg, 3)
    opt = build_optimizer(model, cfg.train)
    sched = LRSchedule(opt, cfg.train, updates_per_epoch=3)
    seen: list[float] = []
    hooks = StepHooks(after_update=lambda n: (sched.after_update(n), seen.append(_lr(opt))))
    loss_fn, rt = build_loss(cfg, np.bincount(labels)), cpu_runtime(cfg)
    per_epoch = []
    for epoch in range(1, 4):
        train_one_epoch(model, loader_of(images, labels, cfg, seed=epoch), loss_fn, opt, rt, hooks)
        sched.after_epoch(epoch, 0.5 + epoch)
        per_epoch.append(_lr(opt))
    assert hooks.updates == 9 and len(seen) == 9  # 48 images / batch 16
    within = [len(set(seen[e * 3:(e + 1) * 3])) for e in range(3)]
    assert within == ([3, 3, 3] if per_update else [1, 1, 1])
    if not per_update:
        assert per_epoch[0] == pytest.approx(cfg.train.lr)  # warmup over after epoch 1
        assert seen[0] == pytest.approx(cfg.train.lr * 1e-2)  # epoch 1 ran at the warmup LR
