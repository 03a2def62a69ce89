"""From a fold's teacher logits to the student's rows and loss: hard pseudo-labels of the confident
test images, soft ones (probabilities at a temperature), or distillation targets on train + test;
for an ordinal or regression task, the number the teacher predicts for every test image."""

from __future__ import annotations

import numpy as np

from imgclf.config.schema import Config, PseudoConfig
from imgclf.data.competition import Competition
from imgclf.errors import ConfigError
from imgclf.models.losses import DistillationLoss
from imgclf.models.ordinal import decode, head_of, target_scale
from imgclf.pseudo.teacher import FoldLogits
from imgclf.training.engine import sigmoid, softmax
from imgclf.training.student import ExtraRows, StudentFold


def probabilities_at(logits: np.ndarray, temperature: float, multi_label: bool) -> np.ndarray:
    scaled = logits / temperature
    return sigmoid(scaled) if multi_label else softmax(scaled)


def confidence(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """Single-label: the top probability; multi-label: how far every label is from 0.5 (mean)."""
    return (np.abs(probs - 0.5) * 2).mean(axis=1) if multi_label else probs.max(axis=1)


def select_rows(probs: np.ndarray, pc: PseudoConfig, multi_label: bool) -> np.ndarray:
    """Test rows to pseudo-label: at least ``threshold`` confident (when set, ``top_fraction`` is
    ignored), or the ``top_fraction`` most confident of each predicted class (so a rare class keeps
    its share), or every row when both are null."""
    conf = confidence(probs, multi_label)
    if pc.threshold is not None:
        return np.flatnonzero(conf >= pc.threshold)
    if pc.top_fraction is None:
        return np.arange(len(probs))
    groups = np.zeros(len(probs), dtype=int) if multi_label else probs.argmax(axis=1)
    keep = []
    for cls in np.unique(groups):
        rows = np.flatnonzero(groups == cls)
        n = max(1, int(round(pc.top_fraction * len(rows))))
        keep.append(rows[np.argsort(-conf[rows], kind="stable")[:n]])
    return np.sort(np.concatenate(keep))


def extra_row_count(pc: PseudoConfig, logits: FoldLogits, comp: Competition) -> int:
    """How many test images the fold's student trains on besides its train images (the plan's count)."""
    if pc.mode == "distill" or comp.continuous:
        return len(logits.test)
    return len(select_rows(probabilities_at(logits.test, 1.0, comp.multi_label), pc, comp.multi_label))


def check_mode(cfg: Config, comp: Competition) -> None:
    """The modes the task's student can learn from, refused before anything is written."""
    mode = cfg.pseudo.mode
    if comp.multi_label and mode == "distill":
        raise ConfigError("pseudo.mode: distill is single-label only; a multi-label task takes soft")
    if not comp.continuous:
        return
    head = head_of(cfg, comp)
    if mode == "distill":
        raise ConfigError(f"pseudo.mode: distill matches class probabilities; a {comp.task} task takes "
                          "hard or soft")
    if mode == "soft" and comp.task == "ordinal" and head != "regression":
        raise ConfigError(f"pseudo.mode: soft gives a grade between two; the {head} head learns whole "
                          "grades: use pseudo.mode=hard, or model.ordinal_head=regression")


def continuous_fold(cfg: Config, comp: Competition, logits: FoldLogits,
                    test_images: np.ndarray | None) -> tuple[StudentFold, dict]:
    """An ordinal or regression task's student rows: every test image with the number its teacher
    decodes it to (no class probabilities, so no confidence to select by). ``hard``: an ordinal
    grade rounded to the nearest one; ``soft``: the number as it is (a regression head's target).
    The mode was checked (``check_mode``) before any fold was made."""
    pc, head = cfg.pseudo, head_of(cfg, comp)
    values = decode(logits.test, head, *target_scale(comp))
    if comp.task == "ordinal" and pc.mode == "hard":
        targets = np.clip(np.rint(values), 0, comp.num_classes - 1).astype(np.int64)
    else:
        targets = values.astype(np.float32)
    files = comp.test["path"].to_numpy()
    extra = ExtraRows(files, targets, test_images)
    summary = {"selected": int(len(files)), "of": int(len(files)),
               "mean_target": float(np.mean(targets)) if len(targets) else None}
    return StudentFold(fold=logits.fold, extra=extra), summary


def student_fold(pc: PseudoConfig, comp: Competition, folds: np.ndarray, logits: FoldLogits,
                 test_images: np.ndarray | None) -> tuple[StudentFold, dict]:
    """The fold's student rows (and loss), and a summary of what was selected."""
    multi = comp.multi_label
    files = comp.test["path"].to_numpy()
    if pc.mode == "distill":  # single-label: check_mode refused it for multi-label
        return _distill(pc, comp, folds, logits, files, test_images)
    probs = probabilities_at(logits.test, 1.0, multi)
    rows = select_rows(probs, pc, multi)
    if pc.mode == "hard":
        targets = (probs[rows] > 0.5).astype(np.float32) if multi else probs[rows].argmax(axis=1)
    else:
        targets = probabilities_at(logits.test[rows], pc.temperature, multi).astype(np.float32)
    extra = ExtraRows(files[rows], targets, None if test_images is None else test_images[rows])
    counts = np.bincount(probs[rows].argmax(axis=1), minlength=comp.num_classes) if not multi else []
    summary = {"selected": int(len(rows)), "of": int(len(files)),
               "per_class": dict(zip(comp.classes, map(int, counts), strict=False)),
               "mean_confidence": float(confidence(probs[rows], multi).mean()) if len(rows) else None}
    return StudentFold(fold=logits.fold, extra=extra), summary


def _distill(pc: PseudoConfig, comp: Competition, folds: np.ndarray, logits: FoldLogits, files: np.ndarray,
             test_images: np.ndarray | None) -> tuple[StudentFold, dict]:
    """Targets [n, 2C]: hard one-hot (zeros on test images) then the teacher's probabilities at T."""
    c, t = comp.num_classes, pc.temperature
    assert logits.train is not None
    # the labels normal training fits (mask layout: data.mask_train_old_age_threshold), not the scored ones
    labels = comp.train["train_label"].to_numpy() if "train_label" in comp.train else comp.labels
    hard = np.eye(c, dtype=np.float32)[labels[folds != logits.fold]]
    train = np.concatenate([hard, probabilities_at(logits.train, t, False)], axis=1).astype(np.float32)
    test = np.concatenate([np.zeros((len(files), c), np.float32), probabilities_at(logits.test, t, False)],
                          axis=1).astype(np.float32)
    loss = DistillationLoss(c, pc.alpha, t)
    student = StudentFold(fold=logits.fold, extra=ExtraRows(files, test, test_images), train_targets=train,
                          loss=loss)
    return student, {"selected": int(len(files)), "of": int(len(files)), "train_rows": int(len(train))}

