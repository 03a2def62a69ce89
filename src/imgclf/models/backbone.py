"""Backbones: a thin layer over ``timm.create_model`` with local/offline pretrained weights, backbone
freezing, and the normalisation the model was trained with."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
from timm.data import resolve_data_config
from torch import nn

from imgclf.config.schema import Config
from imgclf.errors import ConfigError, UserError

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
        from safetensors.torch import load_file  # only .safetensors files need it

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


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can we open a TCP connection to the hub within ``timeout`` seconds (DNS included)?"""
    from huggingface_hub import constants  # only pretrained downloads need the hub client

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # only the proxy knows; let the hub client try
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo ignores socket timeouts, so the probe runs in a thread we stop waiting for
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


@contextlib.contextmanager
def _hub_offline_unless_reachable() -> Iterator[None]:
    """Without a network the hub client retries for about a minute before failing; when the hub
    cannot be reached, switch it to offline mode so cached weights load and missing ones fail fast."""
    from huggingface_hub import constants  # only pretrained downloads need the hub client

    offline = constants.HF_HUB_OFFLINE
    if not offline and not hub_reachable():
        log.warning("the Hugging Face hub (%s) is unreachable: looking for cached weights only", constants.ENDPOINT)
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = offline


def create_timm_model(cfg: Config, num_classes: int) -> nn.Module:
    """A timm model; ``num_classes=0`` gives the pooled-feature backbone."""
    mc = cfg.model
    check_model_name(mc.name)
    kwargs = {"num_classes": num_classes, "drop_rate": mc.drop_rate}
    if mc.drop_path_rate:
        kwargs["drop_path_rate"] = mc.drop_path_rate
    if mc.pretrained and mc.pretrained_path is None:
        try:
            with _hub_offline_unless_reachable():
                return timm.create_model(mc.name, pretrained=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - hub/network failures come in many types
            raise UserError(
                f"model.pretrained: could not get weights for '{mc.name}' from the Hugging Face hub or its "
                f"cache ({type(exc).__name__}); offline? set model.pretrained_path=/path/to/weights.safetensors "
                "(or .pth), or set model.pretrained=false") from None
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


def norm_stats(model: nn.Module) -> tuple[tuple, tuple]:
    """Mean/std the model was (pre)trained with, so training and TTA cannot disagree."""
    source = model if hasattr(model, "pretrained_cfg") else getattr(model, "backbone", model)
    data_cfg = resolve_data_config(model=source)
    return tuple(data_cfg["mean"]), tuple(data_cfg["std"])
