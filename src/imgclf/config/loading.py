"""Building the config: defaults <- configs/default.yaml <- --config FILE <- --set overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from imgclf.config.schema import PROJECT_ROOT, Config, set_dotted, unknown_key_error, validate_config
from imgclf.errors import ConfigError

DEFAULT_CONFIG_FILE = PROJECT_ROOT / "configs" / "default.yaml"


def _merge(base: dict[str, Any], update: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in (update or {}).items():
        path = f"{prefix}{key}"
        if key not in merged and not prefix.endswith("space."):
            raise unknown_key_error(path)
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "space":
            merged[key] = _merge(merged[key], value, path + ".")
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=value`` -> (``a.b``, value parsed as YAML: numbers, booleans, lists, null)."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE, got '{text}'")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return loaded


def load_config(
    config_file: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> Config:
    """Defaults <- ``configs/default.yaml`` <- ``config_file`` <- ``overrides``, validated once."""
    raw = Config().to_dict()
    if DEFAULT_CONFIG_FILE.is_file():
        raw = _merge(raw, read_yaml(DEFAULT_CONFIG_FILE))
    if config_file is not None:
        raw = _merge(raw, read_yaml(config_file))
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or [])
    for key, value in items:
        set_dotted(raw, key, value)
    return validate_config(raw)


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
