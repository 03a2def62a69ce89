"""The sections of the config (``data``, ``model``, ``train``, ...), one pydantic model each.

``schema.Config`` assembles them; every section forbids unknown keys and is frozen, so a typo
fails at load time and no stage can change the config another stage sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[3]


# Multi-label: ce and bce are binary cross-entropy per label, focal is focal-BCE, asl the asymmetric loss.
LossName = Literal["ce", "focal", "f1", "weighted_ce", "bce", "asl"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(Section):
    root: Path = PROJECT_ROOT  # input/, models/ and submissions/ live under it


class DataConfig(Section):
    dir: Path | None = None  # the competition folder; None: the embedded demo under input/digits
    layout: Literal["auto", "csv", "imagefolder", "mask"] = "auto"
    image_size: int | None = Field(None, ge=8, le=2048)  # None: chosen from the data
    max_auto_image_size: int = Field(224, ge=8)
    id_column: str | None = None
    target_column: str | None = None
    # a train.csv column whose values never span folds (None: a column named 'group', if present)
    group_column: str | None = None
    train_dir: str | None = None
    test_dir: str | None = None
    cache: Literal["auto", "ram", "none"] = "auto"
    cache_max_gb: float = Field(4.0, ge=0)
    # Crop to the object before resizing, once, before the decoded cache (data/crop.py).
    crop: Literal["none", "center", "boxes", "faces"] = "none"
    crop_fraction: float = Field(1.0, gt=0, le=1)  # centre crop (and the fallback of boxes/faces)
    crop_margin: float = Field(0.25, ge=0, le=2)  # boxes/faces widened by this share of their size
    boxes_csv: Path | None = None  # crop=boxes: id,x,y,w,h (or xmin,ymin,xmax,ymax); relative to data.dir
    # Mask layout: ages >= old_age_threshold are the oldest class (the competition uses 60).
    mask_young_age_threshold: int = 30
    mask_old_age_threshold: int = 60
    # Training targets only (e.g. 58 to fight the thin >=60 class); validation scores, OOF and folds
    # keep mask_old_age_threshold, so CV stays comparable with the leaderboard. None: the same.
    mask_train_old_age_threshold: int | None = None
    # Another labelled image folder (any layout, the competition's classes), added to the training
    # images of every fold only: never to folds.csv, validation, OOF or the data fingerprint.
    extra_train: Path | None = None


class FoldsConfig(Section):
    n_splits: int = Field(5, ge=2)
    seed: int = 42


class ModelConfig(Section):
    name: str = "resnet10t"
    pretrained: bool = False
    pretrained_path: Path | None = None
    drop_rate: float = Field(0.0, ge=0, lt=1)
    drop_path_rate: float = Field(0.0, ge=0, lt=1)
    heads: Literal["single", "mask"] = "single"  # mask: three heads (mask, gender, age) -> 18 classes
    head_loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # Per head (mask, gender, age): None uses train.loss / train.label_smoothing for all three.
    head_losses: tuple[LossName, LossName, LossName] | None = None
    head_label_smoothing: tuple[float, float, float] | None = None
    # ordinal tasks: regression | classification (expected grade) | coral; auto: models.ordinal.AUTO_HEAD
    ordinal_head: Literal["auto", "regression", "classification", "coral"] = "auto"

    @field_validator("head_label_smoothing")
    @classmethod
    def _smoothing_range(cls, values: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if values is not None and not all(0 <= v < 1 for v in values):
            raise ValueError(f"each smoothing must be in [0, 1), got {list(values)}")
        return values


class AugmentConfig(Section):
    # Probabilities of the label-preserving views. None: decided by the augmentation probe on the
    # competition's folds (planning.views): flips are not label-preserving everywhere (digits).
    hflip: float | None = Field(None, ge=0, le=1)
    vflip: float | None = Field(None, ge=0, le=1)
    rot90: float | None = Field(None, ge=0, le=1)  # a random multiple of 90 degrees
    transpose: float | None = Field(None, ge=0, le=1)
    rotate_limit: float = Field(10.0, ge=0, le=180)
    shift_limit: float = Field(0.08, ge=0, le=0.5)
    scale_limit: float = Field(0.1, ge=0, le=0.5)
    affine_p: float = Field(0.5, ge=0, le=1)
    color_jitter: float = Field(0.0, ge=0, le=1)  # brightness/contrast/saturation strength
    coarse_dropout: float = Field(0.0, ge=0, le=1)  # probability of cutting holes


class TrainConfig(Section):
    # None (the default) for epochs, batch_size and warmup_epochs: from the training plan (planning.plan)
    epochs: int | None = Field(None, ge=1)
    # per process: under torchrun the global batch is batch_size x processes
    batch_size: int | None = Field(None, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.02, ge=0)
    optimizer: Literal["adamw", "adam", "sgd", "nesterov"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1)
    scheduler: Literal["cosine", "step", "plateau", "onecycle", "none"] = "cosine"
    warmup_epochs: float | None = Field(None, ge=0)
    step_size: int = Field(3, ge=1)  # StepLR period (epochs)
    step_gamma: float = Field(0.1, gt=0, le=1)
    loss: LossName = "ce"
    regression_loss: Literal["smooth_l1", "mse"] = "smooth_l1"  # the regression head's loss
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    focal_gamma: float = Field(2.0, ge=0)
    # Multi-label only: asymmetric loss (Ridnik et al.) focusing and clipping of easy negatives.
    asl_gamma_neg: float = Field(4.0, ge=0)
    asl_gamma_pos: float = Field(0.0, ge=0)
    asl_clip: float = Field(0.05, ge=0, lt=1)
    # Multi-label only: per-label weight of the positive term; auto = negatives/positives, capped at 10.
    pos_weight: Literal["none", "auto"] | float = "none"
    sampler: Literal["none", "weighted"] = "none"
    accum_steps: int = Field(1, ge=1)
    clip_grad: float | None = Field(None, gt=0)
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    channels_last: bool | None = None  # None: on for CUDA and for bf16 on CPU
    compile: bool = False
    sync_bn: bool = False  # torchrun on CUDA: BatchNorm statistics over all GPUs' batches (SyncBatchNorm)
    ema: bool = True  # measured: lower OOF log loss on small data; validation and checkpoints use it
    ema_decay: float = Field(0.998, gt=0, lt=1)
    mixup_alpha: float = Field(0.0, ge=0)
    cutmix_alpha: float = Field(0.0, ge=0)
    mix_prob: float = Field(1.0, ge=0, le=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    # The checkpoint whose weights OOF, tuning, inference and pseudo-labels use (both are always
    # written): `last` (last.pt, the final epoch; the EMA and the cosine decay make it sound) keeps the
    # OOF score honest; `best` (best.pt, the best validation epoch) takes a maximum over the very
    # images that are scored (bench/checkpoint_choice.py: OOF up to 0.026 optimistic on 30-75-image
    # folds; test better with `last` in 10 of 14 runs, worse in 2). Early stopping under `last`
    # predicts with the epoch it stopped at.
    checkpoint: Literal["last", "best"] = "last"
    # Seconds between two writes of best.pt, last.pt (the point an interrupted fold resumes from) and
    # history.csv; the final epoch's are always written. 0: after every epoch.
    last_checkpoint_every_s: float = Field(30.0, ge=0)
    freeze_backbone_epochs: int = Field(0, ge=0)
    num_workers: int | None = Field(None, ge=0)  # None: chosen from the CPU count
    deterministic: bool = True

    @field_validator("amp", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false


class PlanConfig(Section):
    """How the training plan turns data and machine into steps (planning.plan)."""

    min_steps: int = Field(600, ge=1)  # optimiser steps per fold at least (small data), budget permitting
    max_steps: int = Field(20000, ge=1)  # and at most (large data)
    epochs_for_large: int = Field(10, ge=1)  # large data: this many epochs, between the two bounds
    train_share: float = Field(0.8, gt=0, le=1)  # of the budget (less fixed costs) for training
    probe_views: bool = True  # decide the label-preserving views by the probe (when augment.* is null)
    # CPU: folds trained side by side, one process each with an equal share of the cores (null: one
    # per core up to the folds, when a fold trains on enough images to be worth a process; 1: one
    # fold at a time in the stage's process)
    fold_workers: int | None = Field(None, ge=1)
    # run_all.sh also trains each as experiment <experiment>_<model>: another architecture family
    # for the ensemble (a fixed, small list: every model trains every fold within the budget)
    extra_models: list[str] = ["regnetx_002"]


class TrackConfig(Section):
    """Experiment trackers (training.trackers): what each fold logs besides history.csv."""

    # tensorboard: event files under fold<k>/tb (on by default); wandb (offline unless WANDB_MODE
    # says otherwise) and mlflow (a local file store) are opt-in
    backends: list[Literal["tensorboard", "wandb", "mlflow"]] = ["tensorboard"]
    dir: Path | None = None  # where wandb and mlflow write; None: models/<comp>/track
    project: str | None = None  # wandb project / MLflow experiment; None: imgclf-<comp>
    group: str | None = None  # the run's group (all its folds); None: <comp>-<experiment>


class InferConfig(Section):
    tta: list[str] | Literal["auto"] = "auto"  # auto: the views trained with that raise OOF
    tta_merge: Literal["prob", "logit"] = "prob"
    batch_size: int = Field(256, ge=1)

    @field_validator("tta")
    @classmethod
    def _known_views(cls, views: list[str] | str) -> list[str] | str:
        if isinstance(views, list):
            known = {"identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose", "scale_up",
                     "scale_down"}
            bad = [v for v in views if v not in known]
            if bad:
                raise ValueError(f"unknown TTA view {bad[0]!r}; known: {sorted(known)}")
            if not views:
                raise ValueError("needs at least one view")
        return views


class EnsembleConfig(Section):
    experiments: list[str] | None = None  # None: every trained experiment
    method: Literal["auto", "hard", "soft", "weighted", "rank", "geometric", "stacking"] = "auto"
    # Multi-label label metrics: thresholds fitted on OOF. auto: global or per_label, whichever scores
    # better out of fold; fixed: threshold_fixed for every label.
    thresholds: Literal["auto", "global", "per_label", "fixed"] = "auto"
    threshold_fixed: float = Field(0.5, gt=0, lt=1)
    at_least_one: Literal["auto", "on", "off"] = "auto"  # on: an image with no label gets its likeliest one


class PseudoConfig(Section):
    """The pseudo-label / distillation stage (pipelines/05b_pseudo.py, ensemble/pseudo layer): a
    student experiment trained per fold on targets from the teacher models of the same fold only."""

    enabled: bool = False  # run_all.sh runs the stage only when true
    # hard: confident test images with the teacher's class; soft: test images with the teacher's
    # probabilities (sharpened by temperature); distill: train + test images, loss = alpha * CE +
    # (1 - alpha) * T^2 * KL(teacher_T || student_T)
    mode: Literal["hard", "soft", "distill"] = "hard"
    teacher: list[str] | None = None  # experiments; None: every complete experiment that is no student
    student: str | None = None  # the student experiment's name; None: "<first teacher>_<mode>"
    # hard/soft selection: a threshold, when set, selects (top_fraction is then ignored, logged);
    # otherwise the top_fraction most confident of each predicted class; both null: every test image
    threshold: float | None = Field(None, gt=0, lt=1)
    top_fraction: float | None = Field(0.5, gt=0, le=1)
    temperature: float = Field(1.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1)  # distill: weight of the hard-label loss
    overrides: dict[str, Any] = Field(default_factory=dict)  # the student's own keys: {model.name: ...}
    # mixed: the teacher's batches of labelled images (its epochs and steps), each carrying batch_ratio
    # x as many pseudo rows, so the labelled images are learnt as the teacher learnt them; steps: as
    # many optimiser steps as the teacher over the labelled and pseudo rows together (each labelled
    # image seen less often); epochs: the teacher's epochs over both (more updates than the teacher)
    schedule: Literal["mixed", "steps", "epochs"] = "mixed"
    batch_ratio: float = Field(1.0, gt=0)  # mixed: pseudo-labelled rows per labelled row in a batch
    # scratch: the student starts from new weights; teacher: fold k's student starts from fold k's
    # teacher weights (the checkpoint that made its targets: one teacher of the student's model), a
    # second round as Kagglers run it
    init: Literal["scratch", "teacher"] = "scratch"

    def rows_per_batch(self, batch: int) -> int:
        """``schedule: mixed``: the pseudo-labelled rows a batch of ``batch`` labelled images carries."""
        return max(1, round(batch * self.batch_ratio))

    @model_validator(mode="after")
    def _one_selection(self) -> PseudoConfig:
        if any(key.split(".")[0] in ("experiment", "pseudo") for key in self.overrides):
            raise ValueError("pseudo.overrides: the student's name is pseudo.student, not an override")
        return self


class SearchParam(Section):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> SearchParam:
        if self.type == "categorical" and not self.choices:
            raise ValueError("a categorical parameter needs 'choices'")
        if self.type != "categorical" and (self.low is None or self.high is None):
            raise ValueError(f"a {self.type} parameter needs 'low' and 'high'")
        return self


def _default_space() -> dict[str, SearchParam]:
    return {
        "train.lr": SearchParam(type="float", low=3e-4, high=1e-2, log=True),
        "train.weight_decay": SearchParam(type="float", low=1e-4, high=1e-1, log=True),
        "train.label_smoothing": SearchParam(type="float", low=0.0, high=0.2),
        "augment.affine_p": SearchParam(type="float", low=0.0, high=0.9),
        "augment.coarse_dropout": SearchParam(type="float", low=0.0, high=0.5),
        "augment.color_jitter": SearchParam(type="float", low=0.0, high=0.5),
        "train.sampler": SearchParam(type="categorical", choices=["none", "weighted"]),
    }


class TuneConfig(Section):
    trials: int = Field(6, ge=1)
    timeout: float | None = Field(None, gt=0)
    folds: list[int] = [0]
    epochs: int | None = Field(None, ge=1)  # None: train.epochs (the plan's): short trials rank noise
    sampler_seed: int = 42
    n_startup_trials: int = Field(5, ge=0)
    pruner: Literal["median", "hyperband", "successive_halving", "none"] = "successive_halving"
    study: str | None = None  # None: "<comp>-<experiment>"
    storage: str | None = None  # None: a JournalFileBackend file under models/<comp>/tune/
    space: dict[str, SearchParam] = Field(default_factory=_default_space)
    train_best: bool = True  # run_all trains the best config as experiment "<experiment>_tuned"
