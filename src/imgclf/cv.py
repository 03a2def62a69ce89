"""Cross-validation of one experiment: every fold (or the listed ones), pooled OOF and CV scores."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import yaml

from .atomic import remove_temps, write_csv, write_text
from .config import Config, dump_yaml, validate_config
from .data import Competition, image_size, load_competition
from .errors import UserError
from .folds import check_experiment_folds, folds_digest, read_folds
from .lock import clear_stale, hold_lock
from .metrics import get_metric, score_all
from .paths import Paths
from .preflight import check_training_inputs

log = logging.getLogger(__name__)

# Config sections whose change makes existing checkpoints of an experiment stale.
TRAINING_KEYS = ("metric", "seed", "data", "folds", "model", "augment", "train")
IGNORED_DATA_KEYS = ("cache", "cache_max_gb", "dir")


def resolve_config(cfg: Config, comp: Competition) -> Config:
    """Fill the data-dependent defaults (image size) so the saved config reproduces the run."""
    if cfg.data.image_size is None:
        size = image_size(cfg, comp)
        log.info("data.image_size not set: using %d px (median short side, capped at %d)",
                 size, cfg.data.max_auto_image_size)
        return cfg.updated({"data.image_size": size})
    return cfg


def training_view(raw: dict) -> dict:
    view = {k: raw.get(k) for k in TRAINING_KEYS}
    view["data"] = {k: v for k, v in (view["data"] or {}).items() if k not in IGNORED_DATA_KEYS}
    view["train"] = {k: v for k, v in (view["train"] or {}).items() if k not in ("num_workers",)}
    return view


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def prepare_experiment(cfg: Config, paths: Paths, experiment: str | None = None) -> None:
    """Save the resolved config; refuse to mix with checkpoints made under a different one."""
    target = paths.config_yaml(experiment)
    if target.is_file():
        saved = yaml.safe_load(target.read_text()) or {}
        diff = config_differences(training_view(saved), training_view(cfg.to_dict()))
        if diff and paths.is_trained(experiment):
            raise UserError(
                f"experiment '{experiment or cfg.experiment}' in {paths.experiment_dir(experiment)} was trained "
                f"with another config ({'; '.join(diff[:3])}); start a new one with --set experiment=NAME "
                "or delete that folder")
    write_text(target, dump_yaml(cfg))
    _check_folds_fingerprint(paths, experiment)


def _check_folds_fingerprint(paths: Paths, experiment: str | None) -> None:
    """Folds of one experiment must all come from the same folds.csv."""
    if paths.is_trained(experiment):
        check_experiment_folds(paths, experiment or paths.experiment,
                               f"start a new one with --set experiment=NAME or delete {paths.experiment_dir(experiment)}")
    write_text(paths.folds_stamp(experiment), folds_digest(paths) + "\n")


def _prepare_cv(cfg: Config, paths: Paths, only_folds: list[int] | None
                ) -> tuple[Config, Competition, np.ndarray, list[int]]:
    comp = load_competition(cfg, paths)
    cfg = resolve_config(cfg, comp)
    folds = read_folds(paths, comp)
    n_folds = int(folds.max()) + 1
    wanted = only_folds if only_folds is not None else list(range(n_folds))
    bad = [f for f in wanted if f not in range(n_folds)]
    if bad:
        raise UserError(f"--folds: fold {bad[0]} does not exist (folds.csv has folds 0..{n_folds - 1})")
    check_training_inputs(cfg, comp)  # before prepare_experiment writes: bad input leaves no new artefact
    prepare_experiment(cfg, paths)
    return cfg, comp, folds, wanted


@contextlib.contextmanager
def _fold_locks(paths: Paths, todo: list[int]) -> Iterator[None]:
    """A lock per fold, not per competition: machines (or GPUs) sharing models/<comp>/ train different
    folds at once, and two runs can never train the same fold."""
    with contextlib.ExitStack() as stack:
        for fold in todo:
            stack.enter_context(hold_lock(paths.fold_lock(fold), f"fold {fold} of experiment '{paths.experiment}'"))
            remove_temps(paths.fold_dir(fold))  # a killed run's half-written checkpoint: nobody else writes here
        yield


def run_cv(cfg: Config, paths: Paths, only_folds: list[int] | None = None) -> dict:
    """Train the wanted unfinished folds, write each fold's OOF, then merge and score the finished ones.

    Under torchrun all ranks train each fold together; rank 0 alone reads and writes models/<comp>/
    (the others get what it read), so other machines need only the competition's images.
    """
    from .distributed import dist_info, held_by_main, on_main
    from .train import predict_fold_oof, run_fold

    info = dist_info()
    cfg, comp, folds, wanted = on_main(lambda: _prepare_cv(cfg, paths, only_folds), info)
    n_folds = int(folds.max()) + 1
    todo = on_main(lambda: [f for f in wanted if not paths.fold_oof(f).is_file()], info)
    for fold in sorted(set(wanted) - set(todo)):
        log.info("fold %d: finished earlier, skipped", fold)
        if info.is_main:
            clear_stale(paths.fold_lock(fold))  # left by a run killed after it finished this fold
    with held_by_main(lambda: _fold_locks(paths, todo), info):
        for fold in todo:
            run_fold(cfg, paths, comp, folds, fold)
            oof = predict_fold_oof(cfg, paths, comp, folds, fold)
            if info.is_main:
                write_csv(paths.fold_oof(fold), oof)
    return on_main(lambda: summarise_cv(cfg, paths, comp, n_folds), info)


def summarise_cv(cfg: Config, paths: Paths, comp: Competition, n_folds: int,
                 experiment: str | None = None) -> dict:
    """Merge the finished folds into oof.csv (id, fold, classes) and score them: per fold and pooled."""
    parts = [pd.read_csv(paths.fold_oof(k, experiment), dtype={"id": str})
             for k in range(n_folds) if paths.fold_oof(k, experiment).is_file()]
    if not parts:
        raise UserError(f"no finished fold under {paths.experiment_dir(experiment)}")
    oof = pd.concat(parts, ignore_index=True)
    order = {i: n for n, i in enumerate(comp.train["id"].astype(str))}
    oof = oof.iloc[np.argsort([order[i] for i in oof["id"].astype(str)], kind="stable")].reset_index(drop=True)
    write_csv(paths.oof_csv(experiment), oof)
    label_of = dict(zip(comp.train["id"].astype(str), comp.train["label"], strict=True))
    labels = np.array([label_of[i] for i in oof["id"].astype(str)])
    probs = oof[comp.classes].to_numpy()
    metric = get_metric(cfg.metric)
    per_fold = {int(k): metric(labels[oof["fold"] == k], probs[oof["fold"] == k]) for k in sorted(oof["fold"].unique())}
    summary = {
        "experiment": experiment or cfg.experiment, "metric": cfg.metric, "folds": per_fold,
        "mean": float(np.mean(list(per_fold.values()))), "std": float(np.std(list(per_fold.values()))),
        "pooled": score_all(labels, probs), "complete": len(per_fold) == n_folds, "n_oof": len(oof),
    }
    write_text(paths.cv_json(experiment), json.dumps(summary, indent=1))
    _print_cv(summary)
    from .report import plot_oof

    plot_oof(labels, probs, comp.classes, paths.experiment_dir(experiment))
    return summary


def _print_cv(summary: dict) -> None:
    metric = summary["metric"]
    lines = [f"CV {summary['experiment']} ({metric})", "fold  score"]
    lines += [f"{k:>4}  {v:.4f}" for k, v in summary["folds"].items()]
    lines.append(f"mean  {summary['mean']:.4f} +- {summary['std']:.4f}")
    lines.append("pooled OOF: " + "  ".join(f"{k} {v:.4f}" for k, v in summary["pooled"].items()))
    if not summary["complete"]:
        lines.append("(some folds are not trained yet: oof.csv is partial)")
    print("\n".join(lines))


def tuned_config(args, cfg: Config, paths: Paths) -> Config | None:
    """The tuning stage's best config as its own experiment ``<experiment>_tuned``, with the user's
    overrides re-applied (except the experiment name), or None when there is nothing to train."""
    from .config import load_config

    if not cfg.tune.train_best:
        log.info("tune.train_best is false: no tuned experiment to train")
        return None
    if not paths.best_config_yaml.is_file():
        log.warning("%s not found: run tune.py first; no tuned experiment trained", paths.best_config_yaml)
        return None
    overrides = [o for o in args.overrides if not o.strip().startswith("experiment=")]
    tuned = load_config(paths.best_config_yaml, [f"data.dir={paths.data_dir}", *overrides])
    return tuned.updated({"experiment": f"{cfg.experiment}_tuned"})


def train_stage(args, cfg: Config, paths: Paths) -> None:
    from .cli import parse_folds

    if getattr(args, "tuned", False):
        from .distributed import dist_info, on_main

        base = cfg
        cfg = on_main(lambda: tuned_config(args, base, paths), dist_info())
        if cfg is None:
            return
        paths = Paths.from_config(cfg)
    run_cv(cfg, paths, parse_folds(getattr(args, "folds", None)))


__all__ = ["run_cv", "summarise_cv", "prepare_experiment", "resolve_config", "validate_config"]
