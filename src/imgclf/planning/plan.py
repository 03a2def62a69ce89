"""The training plan: batch size, optimiser steps per fold, warm-up and image side, derived from the
data (images per fold, classes, image side) and the machine (CPU cores or GPUs) within the time
budget, before training starts.

Small data is planned in optimiser steps, not epochs: ten epochs of 120 images at batch 64 are 20
updates, too few for a network trained from scratch (folds stayed at chance), so small data gets a
small batch and a floor on steps. Large data gets a ceiling so that the run fits its budget. Every
planned key is only a default: a value given in the config or by ``--set`` wins.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from imgclf.config.schema import Config
from imgclf.planning.hardware import FOLD_PROCESS_START_S, Hardware, RateFn, fold_rate

# Seconds a run spends outside training (start-ups, EDA, folds, ensembling, the report): 55 s of the
# digits demo's 149 s on two fast cores (2026-12-03). run_all.sh measures its own instead
# (planning.run.saved_fixed_seconds); this stands in for a stage run on its own.
FIXED_OVERHEAD_S = 55.0
UPSAMPLED_SIDE = 64  # where pixels are cheap, images below it train at it
VALIDATION_FACTOR = 1.15  # a fold's time over its training steps alone: validation after every epoch
# Inference of one TTA view runs at ~6x the training images/s (forward only, no augmentation):
# rot14 on one thread inferred 5293 image-views a fold in 8.6 s against 98 training images/s.
INFERENCE_SPEEDUP = 6.0


@dataclass(frozen=True)
class DataStats:
    n_train: int  # labelled training images
    n_classes: int
    n_folds: int
    side: int  # median short side of the train images (px)
    imbalance: float = 1.0  # largest class / smallest class
    # Rows a fold trains on beyond its share of the train images (a pseudo-label student's test
    # images): they set the steps per epoch, hence the time, as much as the fold's own rows do.
    n_extra: int = 0
    n_test: int = 0  # test images: every fold's model predicts them (inference is part of the budget)


@dataclass(frozen=True)
class TrainingPlan:
    batch_size: int
    epochs: int
    steps_per_epoch: int
    steps_per_fold: int
    warmup_epochs: float
    image_size: int
    fold_seconds: float  # estimated training time of one fold
    run_seconds: float  # estimated time of the whole run (every fold of the experiments it trains)
    budget_seconds: float | None
    fixed_seconds: float = FIXED_OVERHEAD_S  # the run's time outside training and inference
    experiments: int = 1  # experiments the run trains with the budget
    tune_trials: int | None = None  # full-length tuning trials the budget affords (None: no budget)
    extra_models: tuple[str, ...] = ()  # the plan.extra_models the budget affords
    reasons: tuple[str, ...] = ()
    fold_workers: int = 1  # CPU: folds trained side by side (one process each)
    fold_threads: int | None = None  # CPU threads of each fold process (None: the stage's, all)

    def to_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons), "extra_models": list(self.extra_models)}


def fold_train_rows(n_train: int, n_folds: int) -> int:
    """The train images of one fold, as every plan counts them (the other folds' images)."""
    return n_train * (n_folds - 1) // n_folds


def plan_image_size(side: int, cap: int, hw: Hardware, amp: str) -> int:
    """The median side rounded to 8, capped (lower on CPU, where pixels cost time); tiny images are
    upsampled. resnet10t downsamples 32x, so a 32 px image leaves it a 1x1 last map: the plain loop
    scored higher on every quality set at 64 px than at the native 24-32 (texture4 +0.02). Where a
    64 px step costs under ~1.5x a 32 px one under ``amp`` (``Hardware.cheap_pixels``) tiny images go
    to 64 px; in fp32 on CPU (2.5x) the epochs they would cost buy more (eighth session), so 32 px."""
    cap = min(cap, 224 if hw.device == "cuda" else 128)
    floor = UPSAMPLED_SIDE if hw.cheap_pixels(amp, UPSAMPLED_SIDE) else 32
    return int(min(cap, max(floor, round(side / 8) * 8)))


def plan_batch_size(per_fold: int, hw: Hardware) -> int:
    """About 1/40 of a fold's training images, as a power of two in [16, 64] on CPU ([32, 256] on
    CUDA, whose throughput needs larger batches): small data -> small batch -> more updates."""
    lo, hi = (32, 256) if hw.device == "cuda" else (16, 64)
    target = max(1, per_fold // 40)
    return int(min(hi, max(lo, 2 ** round(math.log2(target)))))


def run_experiments(cfg: Config) -> int:
    """How many experiments a whole run trains with the budget: the base one, one per extra model,
    and the tuned one."""
    return 1 + len(cfg.plan.extra_models) + int(cfg.tune.train_best)


def extra_model_configs(cfg: Config, planned: list[str] | None = None) -> list[Config]:
    """One config per ``plan.extra_models`` entry (or per one the base plan kept, ``planned``): the
    same plan and settings with another model, as experiment ``<experiment>_<model>``. A local
    weights file belongs to the base model alone."""
    names = cfg.plan.extra_models if planned is None else [n for n in cfg.plan.extra_models if n in planned]
    return [cfg.updated({"model.name": name, "model.pretrained_path": None,
                         "experiment": f"{cfg.experiment}_{name}"}) for name in names]


def make_plan(stats: DataStats, hw: Hardware, cfg: Config, rate_of: RateFn | None = None,
              fixed_s: float = FIXED_OVERHEAD_S, tta_views: int = 1) -> TrainingPlan:
    """The plan for one experiment of a run that trains ``run_experiments(cfg)`` of them, so that the
    budget is shared between them. ``rate_of``: the measured training throughput (default: the
    rough estimate of ``Hardware.images_per_s``); ``fixed_s``: the run's seconds outside training
    and inference; ``tta_views``: the TTA candidates inference tries (identity included)."""
    pc = cfg.plan
    size = cfg.data.image_size or plan_image_size(stats.side, cfg.data.max_auto_image_size, hw,
                                                        cfg.train.amp)
    # pseudo.schedule mixed: an epoch passes over the train images, each batch carrying pseudo rows
    mixed = bool(stats.n_extra) and cfg.pseudo.schedule == "mixed"
    per_fold = max(1, fold_train_rows(stats.n_train, stats.n_folds) + (0 if mixed else stats.n_extra))
    batch = cfg.train.batch_size or plan_batch_size(per_fold, hw)
    steps_per_epoch = max(1, per_fold // batch) if per_fold > batch else 1
    wanted = _wanted_steps(cfg, steps_per_epoch)
    folds_rate = fold_rate(cfg, hw, stats.n_folds, (size, batch, batch * wanted), rate_of)
    parallel, alone, rate, fold_times = (folds_rate.parallel, folds_rate.alone, folds_rate.each,
                                         folds_rate.fold_times)
    extra = f" ({stats.n_extra} of them beyond the train images)" if stats.n_extra and not mixed else ""
    reasons = [f"{per_fold} training images per fold{extra} -> batch {batch}, "
               f"{steps_per_epoch} steps per epoch", *folds_rate.reasons]
    infer_s = inference_seconds(stats, tta_views, alone)  # in the stage's own process
    reasons += [f"inference ~{infer_s:.0f} s a fold ({tta_views} TTA candidate views)"] if cfg.budget else []
    if mixed:
        ride = cfg.pseudo.rows_per_batch(batch)
        reasons.append(f"each batch also carries {ride} pseudo-labelled rows (pseudo.schedule=mixed)")
        rate *= batch / (batch + ride)  # the time per step grows with the rows it carries
    if wanted == pc.min_steps and not cfg.train.epochs:
        reasons.append(f"small data: at least {pc.min_steps} optimiser steps per fold")
    besides_s = stats.n_folds * infer_s + (FOLD_PROCESS_START_S if parallel.workers > 1 else 0.0)
    fit = _fit_budget(cfg, stats, wanted, steps_per_epoch, batch, rate, fixed_s, (besides_s, fold_times))
    steps, limited, experiments, tune_trials, extras = (fit.steps, fit.limited, fit.experiments,
                                                        fit.tune_trials, fit.extras)
    reasons += fit.reasons
    if limited:
        reasons.append(f"budget {cfg.budget:.0f} s: {steps} steps per fold")
    whole = math.floor if limited else math.ceil  # a budget-limited plan rounds down to whole epochs
    epochs = cfg.train.epochs or max(1, whole(steps / steps_per_epoch))
    steps = epochs * steps_per_epoch
    warmup = cfg.train.warmup_epochs if cfg.train.warmup_epochs is not None else round(
        min(2.0, max(0.2, 0.05 * epochs)), 2)
    fold_s = _fold_seconds(steps, batch, rate)
    trial_s = fold_s * (cfg.tune.epochs / epochs if cfg.tune.epochs else 1.0) * len(cfg.tune.folds)
    run_s = fixed_s + experiments * (fold_times * fold_s + besides_s) + (tune_trials or 0) * trial_s
    return TrainingPlan(batch_size=batch, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        steps_per_fold=steps, warmup_epochs=warmup, image_size=size,
                        fold_seconds=round(fold_s, 1), run_seconds=round(run_s, 1), budget_seconds=cfg.budget,
                        fixed_seconds=round(fixed_s, 1), experiments=experiments, tune_trials=tune_trials,
                        extra_models=extras, reasons=tuple(reasons), fold_workers=parallel.workers,
                        fold_threads=parallel.threads)


def _wanted_steps(cfg: Config, steps_per_epoch: int) -> int:
    """Steps per fold before the budget: the user's epochs when given (the budget then decides about
    tuning and the other families only), else the step floor, ten epochs of large data, the ceiling."""
    if cfg.train.epochs:
        return cfg.train.epochs * steps_per_epoch
    pc = cfg.plan
    return min(max(pc.min_steps, pc.epochs_for_large * steps_per_epoch), pc.max_steps)


@dataclass
class _Fit:
    """What the budget affords: steps per fold, and which of tuning and the extra models stay."""

    steps: int
    limited: bool
    experiments: int
    tune_trials: int | None
    extras: tuple[str, ...]
    reasons: list[str]


def _fit_budget(cfg: Config, stats: DataStats, wanted: int, steps_per_epoch: int, batch: int,
                rate: float, fixed_s: float, schedule: tuple[float, float]) -> _Fit:
    """The base model comes first; tuning and the other families use what is left. Tuning goes
    when the rest affords under half of ``tune.trials`` full-length trials (short trials rank
    noise; ASHA stops about half early); the extra models go (after tuning) when with them a fold
    would get under the step floor. An extra model's own plan counts the experiments its base
    planned and does not decide again."""
    pc = cfg.plan
    fit = _Fit(wanted, False, run_experiments(cfg), None, tuple(pc.extra_models), [])
    if cfg.budget is None:
        return fit

    def share() -> None:  # training's share grows by tuning's when tuning is off
        scale = 1 / pc.train_share if fit.tune_trials == 0 else 1.0
        fit.steps, fit.limited = _steps_within(cfg, stats, wanted, steps_per_epoch, batch / rate,
                                               fit.experiments, scale, fixed_s, schedule)

    def drop_tuning(why: str) -> None:
        fit.reasons.append(f"tuning skipped: {why}; its share goes to training")
        fit.experiments, fit.tune_trials = fit.experiments - int(cfg.tune.train_best), 0
        share()

    share()
    tune_s = tuning_seconds(cfg, fixed_s)
    trial_steps = cfg.tune.epochs * steps_per_epoch if cfg.tune.epochs else fit.steps
    fit.tune_trials = int(tune_s // (_fold_seconds(trial_steps, batch, rate) * len(cfg.tune.folds)))
    if fit.tune_trials * 2 < cfg.tune.trials:
        drop_tuning(f"its ~{tune_s:.0f} s fit {fit.tune_trials} full trials, tune.trials is "
                    f"{cfg.tune.trials}")
    # The floor, not less: regnetx_002 beside resnet10t at 351-370 steps each instead of resnet10t
    # alone at 600 scored lower on colour6 (0.990 against 0.993) and texture4 (0.946 against 0.949;
    # the RegNet's OOF 0.81 kept it out of the blends), 2026-12-08.
    starved = lambda: fit.limited and fit.steps < min(wanted, pc.min_steps)  # noqa: E731
    if fit.extras and cfg.model.name not in fit.extras and starved():
        if fit.tune_trials:
            drop_tuning(f"the other architecture families come first ({fit.steps} steps per fold)")
        if starved():
            fit.reasons.append(f"extra models skipped: with them {fit.steps} steps per fold, under the "
                               f"floor of {min(wanted, pc.min_steps)}")
            fit.experiments, fit.extras = fit.experiments - len(fit.extras), ()
            share()
    return fit


def _fold_seconds(steps: int, batch: int, rate: float) -> float:
    return steps * batch / rate * VALIDATION_FACTOR


def inference_seconds(stats: DataStats, tta_views: int, rate: float) -> float:
    """One fold model's inference: its validation images in every TTA candidate view, the test
    images in the views OOF kept (about half the candidates besides identity)."""
    kept = 1 + (tta_views - 1) / 2
    images = stats.n_train / stats.n_folds * tta_views + stats.n_test * kept
    return images / (INFERENCE_SPEEDUP * rate)


def tuning_seconds(cfg: Config, fixed_s: float) -> float:
    """The budget's share for tuning: what training (``plan.train_share``) leaves of the budget less
    the run's fixed costs."""
    return max(10.0, ((cfg.budget or 0.0) - fixed_s) * (1 - cfg.plan.train_share))


def _steps_within(cfg: Config, stats: DataStats, wanted: int, steps_per_epoch: int, step_s: float,
                  experiments: int, share_scale: float, fixed_s: float,
                  schedule: tuple[float, float]) -> tuple[int, bool]:
    """``wanted`` steps, or fewer when one fold's share of the budget (training and inference get
    plan.train_share of what the fixed costs leave, times ``share_scale``) affords fewer, but never
    under a quarter of the step floor (a model that has barely started is no model); and whether it
    did. ``schedule``: an experiment's seconds besides its folds' training (inference, the fold
    processes' start-up), and the fold times its training takes (its folds, or fewer rounds of folds
    side by side)."""
    if cfg.budget is None:
        return wanted, False
    besides_s, fold_times = schedule
    share = min(1.0, cfg.plan.train_share * share_scale)
    per_experiment = (cfg.budget - fixed_s) * share / experiments - besides_s
    fold_s = max(1.0, per_experiment / fold_times)
    affordable = int(fold_s / step_s / VALIDATION_FACTOR)
    if affordable >= wanted:
        return wanted, False
    return max(affordable, min(cfg.plan.min_steps, wanted) // 4, steps_per_epoch), True


def apply_plan(cfg: Config, plan: TrainingPlan) -> Config:
    """The config with every planned key the user left unset (null) filled from the plan."""
    planned = {"train.batch_size": plan.batch_size, "train.epochs": plan.epochs,
               "train.warmup_epochs": plan.warmup_epochs, "data.image_size": plan.image_size}
    current = {"train.batch_size": cfg.train.batch_size, "train.epochs": cfg.train.epochs,
               "train.warmup_epochs": cfg.train.warmup_epochs, "data.image_size": cfg.data.image_size}
    return cfg.updated({k: v for k, v in planned.items() if current[k] is None})


def describe(plan: TrainingPlan) -> str:
    lines = [f"training plan: batch {plan.batch_size}, {plan.epochs} epochs x {plan.steps_per_epoch} steps "
             f"= {plan.steps_per_fold} optimiser steps per fold, warm-up {plan.warmup_epochs} epochs, "
             f"{plan.image_size} px; ~{plan.fold_seconds:.0f} s per fold"]
    lines += [f"  - {r}" for r in plan.reasons]
    if plan.budget_seconds is not None:
        verdict = "fits" if plan.run_seconds <= plan.budget_seconds else "EXCEEDS"
        lines.append(f"  - whole run ~{plan.run_seconds:.0f} s ({plan.experiments} experiment(s), "
                     f"{plan.tune_trials} tuning trial(s)): {verdict} the budget of "
                     f"{plan.budget_seconds:.0f} s")
    return "\n".join(lines)
