"""The learning-rate range test (Smith 2015; fastai's ``lr_find``) on fold 0's training rows, with
the configured model, optimiser, loss and augmentation: the LR grows exponentially every update
while the smoothed training loss is recorded, until it diverges. Nothing of the experiment's
training state is touched: the model is built, probed and thrown away."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from imgclf.atomic import write_csv, write_text
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.errors import UserError
from imgclf.paths import Paths
from imgclf.reporting.figures import plot_lr_find
from imgclf.training.dataset import make_loader
from imgclf.training.fold import FoldRun, build_fold_run
from imgclf.training.preflight import check_training_inputs
from imgclf.training.status import resolve_config

SMOOTH = 0.05  # exponential smoothing of the loss, as fastai's recorder does
DIVERGE = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum


@dataclass
class LRFind:
    lrs: np.ndarray
    losses: np.ndarray  # smoothed, bias-corrected
    suggestion: float


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's 'valley' rule: the longest run of decreasing losses, and an LR two-thirds down it
    (steadier than the steepest-gradient point on short, noisy curves)."""
    n = len(losses)
    run = [1] * n
    start, end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[start] < run[i]:
            end, start = i, i - run[start]
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def _set_lr(optimizer: torch.optim.Optimizer, lr: float, base: list[float]) -> None:
    top = max(base)
    for group, b in zip(optimizer.param_groups, base, strict=True):
        group["lr"] = lr * b / top  # keeps any per-group LR ratio (layer decay, head LR)


def range_test(run: FoldRun, start_lr: float, end_lr: float,
               num_iter: int) -> tuple[list[float], list[float]]:
    """Raw (lr, smoothed loss) pairs, one per update, until ``num_iter`` or divergence."""
    base = [g["lr"] for g in run.optimizer.param_groups]
    factor = (end_lr / start_lr) ** (1 / max(num_iter - 1, 1))
    lrs, losses, avg, best = [], [], 0.0, math.inf
    run.model.train()
    epoch = 0
    while len(lrs) < num_iter:
        loader = make_loader(run.train_ds, run.cfg, run.rt.device, train=True, seed=run.cfg.seed + epoch,
                             labels_for_sampler=run.train_ds.labels)
        run.train_ds.reseed(run.cfg.seed + epoch)  # unseeded augmentation made two range tests differ
        for images, target, _ in loader:
            lr = start_lr * factor ** len(lrs)
            _set_lr(run.optimizer, lr, base)
            x, y = run.rt.to_input(images), target.to(run.rt.device)
            if run.hooks.mix is not None:
                x, y = run.hooks.mix(x, y)
            with run.rt.autocast():
                loss = run.loss_fn(run.model(x), y)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if run.hooks.clip_grad:
                torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.hooks.clip_grad)
            run.optimizer.step()
            value = float(loss.detach())
            avg = SMOOTH * value + (1 - SMOOTH) * avg if math.isfinite(value) else math.inf
            smoothed = avg / (1 - (1 - SMOOTH) ** (len(lrs) + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if not math.isfinite(smoothed) or smoothed > DIVERGE * best or len(lrs) >= num_iter:
                return lrs, losses
        epoch += 1
    return lrs, losses


def find_lr(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, start_lr: float = 1e-6,
            end_lr: float = 1.0, num_iter: int = 100) -> LRFind:
    """Run the range test on fold 0 and write lr_find.csv, lr_find.png and suggested.yaml."""
    cfg, _ = resolve_config(cfg, comp, paths, folds)  # the plan (batch, side, views), as training has it
    check_training_inputs(cfg, comp)
    run = build_fold_run(cfg, paths, comp, folds, 0, paths.lr_find_dir)
    lrs, losses = range_test(run, start_lr, end_lr, num_iter)
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    lr_arr, loss_arr = np.array(lrs)[finite], np.array(losses)[finite]
    # the points after divergence would make the valley end in the blow-up
    stop = int(np.argmin(loss_arr)) + 1 if len(loss_arr) else 0
    suggestion = valley(lr_arr[:stop], loss_arr[:stop]) if stop > 2 else float(cfg.train.lr)
    result = LRFind(lr_arr, loss_arr, suggestion)
    write_csv(paths.lr_find_dir / "lr_find.csv", pd.DataFrame({"lr": lrs, "loss": losses}))
    plot_lr_find(lr_arr, loss_arr, suggestion, float(cfg.train.lr), paths.lr_find_dir / "lr_find.png")
    write_text(paths.lr_find_dir / "suggested.yaml", f"# LR range test of experiment {cfg.experiment} "
               f"(fold 0, {cfg.train.optimizer}); use with --config\ntrain:\n  lr: {suggestion:.3g}\n")
    return result


def check_config_target(path: Path) -> dict:
    """The YAML mapping in ``path`` ({} when the file does not exist yet); bad YAML is a UserError."""
    if not path.exists():
        if not path.parent.is_dir():
            raise UserError(f"{path}: its folder does not exist")
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: not a readable YAML file ({type(exc).__name__})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("train", {}) or {}, dict):
        raise UserError(f"{path}: expected a YAML mapping with an optional 'train' mapping")
    return raw


def write_lr_into(path: Path, lr: float) -> None:
    """Set ``train.lr`` in the config file ``path``, keeping its other keys and their order (comments
    are not kept: the file is rewritten from its parsed content), atomically."""
    raw = check_config_target(path)
    raw["train"] = {**(raw.get("train") or {}), "lr": float(f"{lr:.3g}")}
    write_text(path, yaml.safe_dump(raw, sort_keys=False))
