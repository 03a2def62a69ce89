"""The one validated config object that flows from the command line into every stage.

``configs/default.yaml`` mirrors the defaults declared here; a user's ``--config FILE`` is merged
over it and ``--set a.b=value`` overrides are applied last. Unknown keys and wrong types are
reported as one line naming the key (and the closest valid key).
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from imgclf.config.sections import (
    PROJECT_ROOT,
    AugmentConfig,
    DataConfig,
    EnsembleConfig,
    FoldsConfig,
    InferConfig,
    LossName,
    ModelConfig,
    PathsConfig,
    PlanConfig,
    PseudoConfig,
    SearchParam,
    Section,
    TrackConfig,
    TrainConfig,
    TuneConfig,
)
from imgclf.errors import ConfigError
from imgclf.metrics import ALL_METRIC_NAMES

# Re-exported: stages import the sections from here, beside the Config that holds them.
__all__ = [
    "PROJECT_ROOT", "AugmentConfig", "Config", "DataConfig", "EnsembleConfig", "FoldsConfig", "InferConfig",
    "LossName", "ModelConfig", "PathsConfig", "PlanConfig", "PseudoConfig", "RESERVED_DIRS", "SearchParam",
    "Section", "TrackConfig", "TrainConfig", "TuneConfig", "set_dotted", "unknown_key_error",
    "validate_config",
]

# Folders under models/<comp>/ that are stage outputs, never experiments (eda/ saves its config too).
RESERVED_DIRS = frozenset({"tune", "eda", "ensemble", "cache"})


class Config(Section):
    experiment: str = "baseline"
    metric: str = "accuracy"
    # auto: decided from the data and the metric (data.multilabel.decide_task, data.ordinal.continuous_task)
    task: Literal["auto", "single_label", "multi_label", "ordinal", "regression"] = "auto"
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # seconds for the whole run_all.sh (run_all.sh --budget S); the plan fits training into it
    budget: float | None = Field(280.0, gt=0)
    paths: PathsConfig = PathsConfig()
    data: DataConfig = DataConfig()
    folds: FoldsConfig = FoldsConfig()
    model: ModelConfig = ModelConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    plan: PlanConfig = PlanConfig()
    infer: InferConfig = InferConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    tune: TuneConfig = TuneConfig()
    pseudo: PseudoConfig = PseudoConfig()
    track: TrackConfig = TrackConfig()

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        if name not in ALL_METRIC_NAMES:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(sorted(ALL_METRIC_NAMES))}")
        return name

    @field_validator("experiment")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not name or "/" in name or name.startswith(".") or name in RESERVED_DIRS:
            raise ValueError(f"{name!r} cannot name an experiment folder")
        return name

    @model_validator(mode="after")
    def _check_space(self) -> Config:
        for key in self.tune.space:
            _resolve_key(self.model_dump(), key, where="tune.space")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def updated(self, overrides: dict[str, Any]) -> Config:
        """A re-validated copy with dotted-key overrides applied."""
        raw = self.to_dict()
        for key, value in overrides.items():
            set_dotted(raw, key, value)
        return validate_config(raw)


def _all_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        keys.append(path)
        if isinstance(value, dict) and key != "space":
            keys.extend(_all_keys(value, path + "."))
    return keys


def unknown_key_error(key: str, where: str = "") -> ConfigError:
    valid = _all_keys(Config().to_dict())
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    place = f" in {where}" if where else ""
    return ConfigError(f"unknown config key '{key}'{place}{hint}")


def _resolve_key(tree: dict[str, Any], key: str, where: str = "") -> None:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise unknown_key_error(key, where)
        node = node[part]


SPACE_PREFIX = "tune.space."


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    if key.startswith(SPACE_PREFIX):  # search-space entries are named by dotted keys themselves
        tree["tune"]["space"][key[len(SPACE_PREFIX):]] = value
        return
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or parts[-1] not in node:
        raise unknown_key_error(key)
    node[parts[-1]] = value


def validate_config(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            raise unknown_key_error(key) from None
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        raise ConfigError(f"config key '{key}': {err['msg']}{shown}") from None
