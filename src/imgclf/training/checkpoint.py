"""Checkpoints as plain dicts of tensors and Python primitives: written atomically, read with
``torch.load(weights_only=True)`` so loading never unpickles arbitrary objects. Also the seeding and
RNG states that exact resume depends on, and a trained model rebuilt from its best.pt or last.pt alone."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imgclf.atomic import atomic_path
from imgclf.config.schema import validate_config
from imgclf.data.competition import Competition
from imgclf.errors import UserError
from imgclf.models.backbone import norm_stats
from imgclf.models.factory import build_model
from imgclf.models.ordinal import output_width
from imgclf.training.distributed import DistInfo, on_main


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # through a Python file object, a failed write (disk full) keeps its OSError in the chain
        torch.save(state, handle)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file is the user's input
        raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120]})") from None


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors/primitives (weights_only-loadable)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(mt), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_compatible(ckpt: dict[str, Any], classes: list[str], path: Path) -> None:
    saved = ckpt.get("classes")
    if saved != classes:
        raise UserError(f"{path}: made for {len(saved or [])} classes {saved[:5] if saved else ''}..., "
                        f"the data has {len(classes)}; train a new experiment (--set experiment=NAME)")


def read_checkpoint(path: Path, comp: Competition) -> dict:
    state = load_checkpoint(path)
    check_compatible(state, comp.classes, path)
    return state


def evaluated_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint was validated with: best.pt's, or in last.pt (a training state) the
    moving average when the run kept one, else the model's."""
    if "optimizer" not in state:
        return state["model"]
    ema = state.get("ema")
    return state["model"] if ema is None else {k.removeprefix("module."): v for k, v in ema.items()}


def load_model_for_inference(ckpt_path: Path, comp: Competition, device: torch.device,
                             info: DistInfo | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model from a best.pt or last.pt alone (its stored config and evaluated weights), on
    ``device`` in eval mode; under DDP (``info``) rank 0 reads the file for every rank."""
    state = on_main(lambda: read_checkpoint(ckpt_path, comp), info or DistInfo())
    cfg = validate_config({**state["config"], "model": {**state["config"]["model"], "pretrained": False}})
    model = build_model(cfg, output_width(cfg, comp))
    model.load_state_dict(evaluated_weights(state))
    if "mean" not in state:  # a last.pt written before it stored them: the model's own statistics
        mean, std = norm_stats(model)
        state = {**state, "mean": torch.tensor(mean), "std": torch.tensor(std)}
    return model.to(device).eval(), state


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
