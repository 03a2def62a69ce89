"""The training and evaluation loops. They know models, batches and devices, nothing about files."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from imgclf.config.schema import Config
from imgclf.errors import UserError
from imgclf.planning.hardware import cpu_autocasts_bf16, cpu_has_bf16_matrix_units
from imgclf.training.transforms import apply_view


@dataclass
class Runtime:
    """Where and how tensors run: device, autocast dtype, memory format, input normalisation."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    mean: torch.Tensor  # [1, 3, 1, 1] on device, 0-255 scale
    std: torch.Tensor
    scaler: torch.amp.GradScaler | None = None
    progress: bool | None = None  # None: bars only on a terminal

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC batch -> normalised float NCHW on the device (copy as uint8: 4x fewer bytes)."""
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()


def pick_device(cfg: Config) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UserError("device: 'cuda' requested but CUDA is not available (set device=auto or cpu)")
    if cfg.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: bf16 on CUDA when supported, else fp16 (which needs a GradScaler). On CPU bf16
    when asked for or where it pays (``planning.hardware.cpu_autocasts_bf16``), otherwise off."""
    amp = cfg.train.amp
    if device.type == "cuda" and amp != "off":
        bf16 = amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported())
        return torch.bfloat16 if bf16 else torch.float16
    if device.type == "cpu" and cpu_autocasts_bf16(amp, cfg.data.image_size, cpu_has_bf16_matrix_units()):
        return torch.bfloat16
    return None


# Progress bars of every runtime made in this process (None: on a terminal). A fold process keeps
# them off: folds side by side would draw over each other, and its parent shows the folds' bar.
_progress_default: bool | None = None


def hide_progress_bars() -> None:
    global _progress_default
    _progress_default = False


def make_runtime(cfg: Config, device: torch.device, mean: tuple, std: tuple) -> Runtime:
    dtype = amp_dtype(cfg, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
    to_dev = dict(device=device, dtype=torch.float32)
    return Runtime(
        device=device, amp_dtype=dtype,
        # NHWC suits cuDNN and oneDNN's bf16 kernels (64 px bf16 forward 36 -> 24 ms); fp32 CPU convs not
        channels_last=(cfg.train.channels_last if cfg.train.channels_last is not None
                       else device.type == "cuda" or dtype == torch.bfloat16),
        mean=torch.tensor([m * 255 for m in mean], **to_dev).view(1, 3, 1, 1),
        std=torch.tensor([s * 255 for s in std], **to_dev).view(1, 3, 1, 1),
        scaler=torch.amp.GradScaler("cuda") if dtype == torch.float16 else None, progress=_progress_default)


@dataclass
class StepHooks:
    """Optional per-step work around the optimiser: LR schedule, EMA, mixing, gradient clipping."""

    after_update: Callable[[int], None] | None = None  # called with the global update count
    ema: object | None = None  # timm ModelEmaV3
    mix: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    clip_grad: float | None = None
    accum_steps: int = 1
    updates: int = 0
    epoch_images: int = 0  # images the last train_one_epoch saw (the last batch may be short)
    extra: dict = field(default_factory=dict)


def train_one_epoch(model: nn.Module, loader: Iterable, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    rt: Runtime, hooks: StepHooks, desc: str = "train") -> float:
    """One pass over ``loader``; returns the mean training loss (one device sync per epoch)."""
    model.train()
    total = torch.zeros((), device=rt.device)
    seen = 0
    n_batches = len(loader)  # type: ignore[arg-type]
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(loader, desc=desc, leave=False, disable=None if rt.progress is None else not rt.progress,
               mininterval=1.0, unit="batch")
    for step, (images, target, _) in enumerate(bar):
        x = rt.to_input(images)
        y = target.to(rt.device, non_blocking=True)
        if hooks.mix is not None:
            x, y = hooks.mix(x, y)
        with rt.autocast():
            loss = loss_fn(model(x), y)
        last_of_window = (step + 1) % hooks.accum_steps == 0 or step + 1 == n_batches
        window = hooks.accum_steps if (step // hooks.accum_steps + 1) * hooks.accum_steps <= n_batches \
            else n_batches % hooks.accum_steps
        scaled = loss / window
        (rt.scaler.scale(scaled) if rt.scaler else scaled).backward()
        total += loss.detach() * len(images)
        seen += len(images)
        if last_of_window:
            _update(model, optimizer, rt, hooks)
    hooks.epoch_images = seen
    mean = float(total.item()) / max(seen, 1)
    if not math.isfinite(mean):
        raise FloatingPointError(f"training loss is {mean}")
    return mean


def _update(model: nn.Module, optimizer: torch.optim.Optimizer, rt: Runtime, hooks: StepHooks) -> None:
    if hooks.clip_grad:
        if rt.scaler:
            rt.scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), hooks.clip_grad)
    if rt.scaler:
        rt.scaler.step(optimizer)
        rt.scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    hooks.updates += 1
    if hooks.ema is not None:  # the EMA copy mirrors the plain module, not a compile/DDP wrapper
        hooks.ema.update(unwrap(model), step=hooks.updates)
    if hooks.after_update is not None:
        hooks.after_update(hooks.updates)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile and DistributedDataParallel wrappers."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@torch.inference_mode()
def predict_views(model: nn.Module, loader: Iterable, rt: Runtime, views: list[str],
                  desc: str = "predict") -> tuple[np.ndarray, np.ndarray]:
    """Logits per view and row, shape (views, rows, classes), and the row indices they belong to."""
    model.eval()
    outputs, rows = [], []
    for images, _, index in tqdm(loader, desc=desc, leave=False,
                                 disable=None if rt.progress is None else not rt.progress, mininterval=1.0):
        x = rt.to_input(images)
        with rt.autocast():
            outputs.append(torch.stack([model(apply_view(x, v)).float() for v in views]).cpu())
        rows.append(index)
    return torch.cat(outputs, dim=1).numpy(), torch.cat(rows).numpy()


def merge_views(per_view: np.ndarray, merge: str = "prob", multi_label: bool = False) -> np.ndarray:
    """TTA: per-view logits (views, rows, classes) -> logits (or the log of the averaged softmax
    probabilities; ``multi_label``: the logit of the averaged sigmoid probabilities)."""
    if merge == "logit" or len(per_view) == 1:
        return per_view.mean(0)
    if multi_label:
        return torch.logit(torch.from_numpy(per_view).sigmoid().mean(0), eps=1e-7).numpy()
    probs = torch.from_numpy(per_view).softmax(-1).mean(0)
    return probs.clamp_min(1e-12).log().numpy()


def predict_logits(model: nn.Module, loader: Iterable, rt: Runtime, views: list[str] | None = None,
                   merge: str = "prob", desc: str = "predict",
                   multi_label: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Logits (or log of TTA-averaged probabilities) per row, and the row indices they belong to."""
    per_view, rows = predict_views(model, loader, rt, views or ["identity"], desc)
    return merge_views(per_view, merge, multi_label), rows


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Class probabilities (softmax) or, multi-label, one independent probability per label (sigmoid)."""
    return sigmoid(logits) if multi_label else softmax(logits)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
