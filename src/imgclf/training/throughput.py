"""Training throughput measured on this machine, for the training plan's budget: a few real optimiser
steps of the configured model at the planned side and batch, plus the augmentation of one batch.

A constant cannot stand in for it: the same resnet10t trains ~160 images/s on two loaded CPU
cores and thousands on a GPU, and a RegNet or a ConvNeXt differs again. The planning layer keeps the
figure (``planning.run.planned_rate``) so that a rerun plans the same epochs without torch.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from timm.utils import ModelEmaV3

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.models.backbone import norm_stats
from imgclf.models.factory import build_loss, build_model
from imgclf.models.ordinal import output_width
from imgclf.training.engine import make_runtime, pick_device
from imgclf.training.optim import build_optimizer
from imgclf.training.threads import torch_threads
from imgclf.training.transforms import train_transform

WARMUP_STEPS = 5  # the first steps allocate and pick kernels
MIN_STEPS, MIN_SECONDS, MAX_STEPS = 5, 2.0, 60  # timed steps: 5 and two seconds at least, 60 at most
# The real loop runs a little slower than bare steps on random tensors: the loader collates and
# copies, its workers share the CPU cores with the steps. Measured 2026-12-03 (resnet10t, 32 px):
# the digits demo (batch 32, two threads) trained at 550-580 images/s in its epochs against 540-590
# for bare steps, rot14 (batch 16, one thread) at 176-196 against ~205: 0.9 of the bare figure.
# (0.75, from an earlier measurement whose bare steps were timed after two warm-up steps only, made
# the demo's plan expect 44 s a fold where its folds took 19 s: half the budget went unused.)
LOOP_EFFICIENCY = 0.9


def _timed_steps(cfg: Config, comp: Competition, side: int, batch: int) -> float:
    """Seconds per image of forward, backward and optimiser step, on random images."""
    device = pick_device(cfg)
    cfg = cfg.updated({"data.image_size": side})  # the side decides the CPU's autocast (engine.amp_dtype)
    model = build_model(cfg.updated({"model.pretrained": False}), output_width(cfg, comp)).to(device)
    rt = make_runtime(cfg, device, *norm_stats(model))
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    net = torch.compile(model) if cfg.train.compile else model
    optimizer = build_optimizer(model, cfg.train)
    ema = ModelEmaV3(model, decay=cfg.train.ema_decay) if cfg.train.ema else None
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, side, side, 3), dtype=torch.uint8, generator=gen)
    loss_fn = build_loss(cfg, np.ones(comp.num_classes), n_rows=2 if comp.multi_label else None, comp=comp)
    target = _targets(comp, batch)
    loss_fn, target = loss_fn.to(device), target.to(device)

    def step() -> None:
        with rt.autocast():
            loss = loss_fn(net(rt.to_input(images)), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:  # the loop updates the average after every step: part of its cost
            ema.update(model)

    for _ in range(WARMUP_STEPS):
        step()
    times: list[float] = []
    while len(times) < MAX_STEPS and (len(times) < MIN_STEPS or sum(times) < MIN_SECONDS):
        start = _synced(device)
        step()
        times.append(_synced(device) - start)
    # the median step: a burst of another process's work on a shared machine skews the mean
    return float(np.median(times)) / batch


def _targets(comp: Competition, batch: int) -> torch.Tensor:
    """A batch of the competition's own labels, typed as the training dataset types them."""
    labels = np.take(comp.labels, np.arange(batch) % len(comp.labels), axis=0)
    if comp.multi_label or np.issubdtype(labels.dtype, np.floating):
        return torch.from_numpy(labels.astype(np.float32))
    return torch.from_numpy(labels.astype(np.int64))


def _synced(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _augment_seconds(cfg: Config, side: int, n: int = 64) -> float:
    """Seconds per image of the training augmentation (its random views left off: they cost nothing)."""
    transform = train_transform(cfg.augment, side, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    start = time.perf_counter()
    for image in images:
        transform(image=image)
    return (time.perf_counter() - start) / n


def measure_images_per_s(cfg: Config, comp: Competition, side: int, batch: int,
                         threads: int | None = None) -> float:
    """Training images/s on ``threads`` CPU threads (None: the process's): on CPU the augmentation
    shares the cores with the steps, so their times add; on CUDA the loader's workers augment while
    the GPU computes, so the slower one sets the pace."""
    with torch_threads(threads):
        model_s = _timed_steps(cfg, comp, side, batch)
        augment_s = _augment_seconds(cfg, side)
    if pick_device(cfg).type == "cuda":
        workers = max(1, cfg.train.num_workers or 4)
        return LOOP_EFFICIENCY / max(model_s, augment_s / workers)
    return LOOP_EFFICIENCY / (model_s + augment_s)
