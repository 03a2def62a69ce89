"""Checkpoints as plain dicts of tensors and Python primitives: written atomically, read with
``torch.load(weights_only=True)`` so loading never unpickles arbitrary objects."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_path
from .errors import UserError


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
        raise UserError(f"{path}: made for {len(saved or [])} classes {saved[:5] if saved else ''}..., the data "
                        f"has {len(classes)}; train a new experiment (--set experiment=NAME)")
