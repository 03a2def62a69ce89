"""The plan of one experiment from its data, folds and machine: the training plan and the
label-preserving views, filled into every config key the user left null, logged and saved."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np

from imgclf.atomic import write_text
from imgclf.config.schema import Config
from imgclf.data.boxes import competition_crop
from imgclf.data.competition import Competition
from imgclf.data.folds import folds_digest
from imgclf.data.images import read_resized
from imgclf.data.sizing import auto_image_size
from imgclf.paths import Paths
from imgclf.planning.hardware import Hardware, RateFn, detect_hardware
from imgclf.planning.plan import (
    FIXED_OVERHEAD_S,
    DataStats,
    apply_plan,
    describe,
    extra_model_configs,
    make_plan,
)
from imgclf.planning.views import PROBE_SIDE, PROBE_VERSION, VIEWS, describe_views, probe_views, tta_views

log = logging.getLogger(__name__)

RUN_STARTED_ENV = "IMGCLF_RUN_STARTED"  # run_all.sh exports when the whole run began (Unix seconds)
# The run's seconds outside training per second it took to reach its first plan. Both are mostly
# interpreter start-ups, imports, decoding and plotting, which scale alike with the machine and the
# data. Digits demo, two slow cores (2026-12-07): 18 s from run_all.sh's start to the plan (EDA,
# folds, the training stage's start-up), 72 s outside training in all (throughput, probe, OOF and
# Grad-CAM, the later stages).
FIXED_PER_SECOND_BEFORE_PLAN = 4.0
PROBE_IMAGES = 2500  # the probe reads at most this many train images
# What a kept view trains with: a flip half the time; a turn drawn from all four (p=1).
VIEW_PROBABILITY = {"hflip": 0.5, "vflip": 0.5, "rot90": 1.0, "transpose": 0.5}


def _single_labels(comp: Competition) -> np.ndarray | None:
    """One class index per image, or None for targets that are not (the probe and the balance need it)."""
    labels = comp.train["label"].to_numpy()
    return labels if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer) else None


def data_stats(cfg: Config, comp: Competition, folds: np.ndarray, n_extra: int = 0) -> DataStats:
    labels = _single_labels(comp)
    imbalance = 1.0
    if labels is not None:
        counts = np.bincount(labels, minlength=comp.num_classes)
        imbalance = float(counts.max() / max(counts[counts > 0].min(), 1))
    return DataStats(n_train=len(comp.train), n_classes=comp.num_classes, n_folds=int(folds.max()) + 1,
                     side=auto_image_size(comp, 4096), imbalance=imbalance, n_extra=n_extra,
                     n_test=len(comp.test))


def view_evidence(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray) -> dict:
    """The probe's evidence, read back from views.json while folds.csv is the one it was made on."""
    digest = folds_digest(paths)
    if paths.views_json.is_file():
        saved = json.loads(paths.views_json.read_text())
        if (saved.get("folds"), saved.get("seed"), saved.get("probe")) == (digest, cfg.seed, PROBE_VERSION):
            return saved["evidence"]
    rng = np.random.default_rng(cfg.seed)
    n = len(comp.train)
    rows = np.sort(rng.choice(n, size=PROBE_IMAGES, replace=False)) if n > PROBE_IMAGES else np.arange(n)
    files = comp.train["path"].to_numpy()[rows]
    crop = competition_crop(cfg.data, comp)
    images = np.stack([read_resized(f, PROBE_SIDE, crop) for f in files])
    evidence = probe_views(images, comp.train["label"].to_numpy()[rows], folds[rows], seed=cfg.seed)
    record = {"folds": digest, "seed": cfg.seed, "probe": PROBE_VERSION, "evidence": evidence}
    write_text(paths.views_json, json.dumps(record, indent=1))
    return evidence


def _views(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray) -> tuple[dict, dict | None]:
    """The augment.* view probabilities to fill (only the null ones) and the evidence behind them."""
    unset = [v for v in VIEWS if getattr(cfg.augment, v) is None]
    if not unset:
        return {}, None
    if not cfg.plan.probe_views or _single_labels(comp) is None:
        return {f"augment.{v}": 0.0 for v in unset}, None
    evidence = view_evidence(cfg, paths, comp, folds)
    keep = {v for v, e in evidence["views"].items() if e["keep"]}
    return {f"augment.{v}": VIEW_PROBABILITY[v] if v in keep else 0.0 for v in unset}, evidence


def machine_key(hw: Hardware) -> str:
    return f"{hw.device} x{max(hw.gpus, 1) if hw.device == 'cuda' else hw.cpus}"


def throughput_key(cfg: Config, hw: Hardware, side: int, batch: int, threads: int | None = None) -> str:
    """Everything a measured training throughput depends on."""
    t, m = cfg.train, cfg.model
    threads_key = f" | {threads} thread(s)" if threads else ""
    return (f"{machine_key(hw)} | {m.name} {m.heads} | "
            f"{side} px batch {batch} | amp {t.amp} channels_last {t.channels_last} compile {t.compile} | "
            f"OMP_NUM_THREADS {os.environ.get('OMP_NUM_THREADS', 'unset')}{threads_key}")


def _saved_figure(paths: Paths, key: str, compute: Callable[[], float]) -> float:
    """``compute()`` once per key, kept in the throughput file and then read back (without torch), so
    that a rerun plans the same epochs and a resumed experiment keeps its config."""
    saved = json.loads(paths.throughput_json.read_text()) if paths.throughput_json.is_file() else {}
    if key not in saved:
        saved[key] = round(compute(), 1)
        write_text(paths.throughput_json, json.dumps(saved, indent=1, sort_keys=True))
    return float(saved[key])


def saved_rate(cfg: Config, paths: Paths, hw: Hardware, measure: RateFn) -> RateFn:
    """``measure`` behind the throughput file: measured once per model, side, batch and machine."""
    def rate(side: int, batch: int, threads: int | None = None) -> float:
        key = throughput_key(cfg, hw, side, batch, threads)

        def measured() -> float:
            images_per_s = measure(side, batch, threads)
            log.info("measured training throughput: %.0f images/s (%s)", images_per_s, key)
            return images_per_s
        return _saved_figure(paths, key, measured)
    return rate


def run_elapsed() -> float | None:
    """Seconds since run_all.sh started this run, or None for a stage run on its own."""
    try:
        return max(0.0, time.time() - float(os.environ[RUN_STARTED_ENV]))
    except (KeyError, ValueError):
        return None


def saved_fixed_seconds(paths: Paths, hw: Hardware) -> float:
    """The run's seconds outside training, estimated once per competition and machine (then read
    back, like the throughput): FIXED_PER_SECOND_BEFORE_PLAN times the time run_all.sh took to reach
    this first plan, or FIXED_OVERHEAD_S for a stage run on its own."""
    def estimated() -> float:
        elapsed = run_elapsed()
        if elapsed is None:
            seconds, how = FIXED_OVERHEAD_S, "a stage run on its own"
        else:
            seconds = FIXED_PER_SECOND_BEFORE_PLAN * elapsed
            how = f"run_all.sh took {elapsed:.0f} s to reach this plan"
        log.info("the run's time outside training: ~%.0f s (%s)", seconds, how)
        return seconds
    return _saved_figure(paths, f"fixed seconds outside training | {machine_key(hw)}", estimated)


def plan_experiment(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray,
                    measure: RateFn | None = None, n_extra: int = 0) -> tuple[Config, dict]:
    """The config with the plan filled in, and the plan's record (for plan.json and the report).
    ``measure`` times training at (side, batch); it is called only when the budget sets the epochs.
    ``n_extra``: rows each fold trains on beyond its train images (a student's test images)."""
    stats = data_stats(cfg, comp, folds, n_extra)
    hardware = detect_hardware(cfg)
    budgeted = cfg.budget is not None and cfg.train.epochs is None
    rate = saved_rate(cfg, paths, hardware, measure) if budgeted and measure is not None else None
    fixed = saved_fixed_seconds(paths, hardware) if budgeted else FIXED_OVERHEAD_S
    views, evidence = _views(cfg, paths, comp, folds)
    plan = make_plan(stats, hardware, cfg, rate_of=rate, fixed_s=fixed,
                     tta_views=len(tta_views(cfg.updated(views))))
    log.info("%s", describe(plan))
    if cfg.budget is not None and plan.run_seconds > cfg.budget:
        log.warning("this run would take ~%.0f s, more than its budget of %.0f s: lower plan.min_steps, "
                    "set train.epochs, or raise --budget", plan.run_seconds, cfg.budget)
    if stats.imbalance >= 3 and cfg.metric == "accuracy":
        log.warning("classes are imbalanced %.1f:1 and the metric is accuracy: consider "
                    "--set metric=f1_macro (or balanced_accuracy) and train.sampler=weighted",
                    stats.imbalance)
    if evidence is not None:
        log.info("%s", describe_views(evidence))
    planned = apply_plan(cfg, plan).updated(views)
    record = {"data": asdict(stats), "hardware": asdict(hardware), "plan": plan.to_dict(),
              "augment": {v: getattr(planned.augment, v) for v in VIEWS},
              "augment_from_probe": sorted(k.split(".", 1)[1] for k in views), "augment_evidence": evidence}
    return planned, record


def save_plan(record: dict, paths: Paths, experiment: str | None = None) -> None:
    write_text(paths.plan_json(experiment), json.dumps(record, indent=1))


def planned_extra_models(cfg: Config, paths: Paths) -> list[Config]:
    """The extra models' configs that the base experiment's plan kept within the budget (all of
    ``plan.extra_models`` when the base has no plan yet)."""
    record = json.loads(paths.plan_json().read_text()) if paths.plan_json().is_file() else {}
    planned = record.get("plan", {}).get("extra_models")
    skipped = [n for n in cfg.plan.extra_models if planned is not None and n not in planned]
    if skipped:
        log.info("extra models %s not trained: the budget went to the base model (see its plan in %s)",
                 ", ".join(skipped), paths.plan_json())
    return extra_model_configs(cfg, planned)
