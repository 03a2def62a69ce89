"""Models: a thin layer over ``timm.create_model`` with local/offline pretrained weights."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

import timm
import torch
from torch import nn

from .config import Config
from .errors import ConfigError, UserError

log = logging.getLogger(__name__)


def check_model_name(name: str) -> None:
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"model.name: unknown timm model '{name}'{hint}")


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """Weights from a local .safetensors/.pth/.bin file (plain tensors only, never pickled objects)."""
    if not path.is_file():
        raise ConfigError(f"model.pretrained_path: file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
            raise ConfigError(f"model.pretrained_path: cannot read weights from {path} ({type(exc).__name__})") from None
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def create_timm_model(cfg: Config, num_classes: int) -> nn.Module:
    """A timm model; ``num_classes=0`` gives the pooled-feature backbone."""
    mc = cfg.model
    check_model_name(mc.name)
    kwargs = {"num_classes": num_classes, "drop_rate": mc.drop_rate}
    if mc.drop_path_rate:
        kwargs["drop_path_rate"] = mc.drop_path_rate
    if mc.pretrained and mc.pretrained_path is None:
        try:
            return timm.create_model(mc.name, pretrained=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - hub/network failures come in many types
            raise UserError(
                f"model.pretrained: could not download weights for '{mc.name}' ({type(exc).__name__}); "
                "offline? set model.pretrained_path=/path/to/weights.safetensors (or .pth), or fill the "
                "Hugging Face cache and set HF_HUB_OFFLINE=1, or set model.pretrained=false") from None
    model = timm.create_model(mc.name, pretrained=False, **kwargs)
    if mc.pretrained and mc.pretrained_path is not None:
        load_pretrained_file(model, Path(mc.pretrained_path))
    return model


def load_pretrained_file(model: nn.Module, path: Path) -> None:
    """Load backbone weights from a file; a classifier of another shape is skipped (re-initialised)."""
    state = load_state_file(path)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(usable))
    if not usable:
        raise ConfigError(f"model.pretrained_path: no tensor in {path} fits model '{type(model).__name__}'")
    missing = model.load_state_dict(usable, strict=False).missing_keys
    log.info("loaded %d tensors from %s (%d skipped, %d left at init: %s)", len(usable), path,
             len(skipped), len(missing), ", ".join(missing[:4]))


def build_model(cfg: Config, num_classes: int) -> nn.Module:
    if cfg.model.heads == "mask":
        from .multihead import MaskHeadModel

        return MaskHeadModel(cfg, num_classes)
    return create_timm_model(cfg, num_classes)


def classifier_parameters(model: nn.Module) -> set[int]:
    """ids of the head's parameters (what stays trainable while the backbone is frozen)."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(head, nn.Module):
        raise ConfigError("train.freeze_backbone_epochs: this model does not expose its classifier")
    return {id(p) for p in head.parameters()}


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    head = classifier_parameters(model)
    for param in model.parameters():
        if id(param) not in head:
            param.requires_grad_(not frozen)
