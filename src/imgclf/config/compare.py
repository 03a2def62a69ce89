"""How two configs differ, and which part of a config decides what a training run computes."""

from __future__ import annotations

# Config sections whose change makes existing checkpoints of an experiment stale.
TRAINING_KEYS = ("metric", "seed", "data", "folds", "model", "augment", "train")
IGNORED_DATA_KEYS = ("cache", "cache_max_gb", "dir")


def training_view(raw: dict) -> dict:
    """The part of a config dict that decides what training computes (not where data and caches are)."""
    view = {k: raw.get(k) for k in TRAINING_KEYS}
    view["data"] = {k: v for k, v in (view["data"] or {}).items() if k not in IGNORED_DATA_KEYS}
    view["train"] = {k: v for k, v in (view["train"] or {}).items() if k not in ("num_workers",)}
    return view


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key.path: old -> new`` for every leaf that differs, in key order."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out
