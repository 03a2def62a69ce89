"""What a fold trains on beyond its own training rows: ``data.extra_train`` images (every
experiment) and, for a student experiment, the pseudo-labelled or teacher-labelled rows and loss.

Targets are class indices [n], or probability rows [n, C] (soft pseudo-labels), or [n, 2C] (the
distillation loss: hard one-hot, then the teacher's probabilities). Parts of different widths are
widened to the widest one, a class index becoming its one-hot (twice for [n, 2C]: an image with a
known label is its own teacher).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn


@dataclass(frozen=True)
class ExtraRows:
    files: np.ndarray
    targets: np.ndarray
    images: np.ndarray | None = None  # decoded cache rows aligned with files, or None


@dataclass(frozen=True)
class StudentFold:
    """A student's fold: extra rows (test images), replaced targets of the fold's own training rows
    (distillation), and the loss that reads those targets."""

    fold: int
    extra: ExtraRows | None = None
    train_targets: np.ndarray | None = None
    loss: nn.Module | None = None
    init_weights: Path | None = None  # a checkpoint of this fold's teacher to start from (pseudo.init)


def widen(targets: np.ndarray, width: int, num_classes: int) -> np.ndarray:
    """Class indices -> one-hot rows of ``width`` (C or 2C); wider targets are returned as they are."""
    if targets.ndim == 2:
        return targets.astype(np.float32)
    onehot = np.eye(num_classes, dtype=np.float32)[targets]
    return np.concatenate([onehot] * (width // num_classes), axis=1)


def combine(parts: list[ExtraRows], num_classes: int) -> ExtraRows:
    """The parts' rows one after the other; decoded images only when every part has them."""
    width = max((p.targets.shape[1] if p.targets.ndim == 2 else 0) for p in parts)
    targets = [p.targets if width == 0 else widen(p.targets, width, num_classes) for p in parts]
    images = (None if any(p.images is None for p in parts)
              else np.concatenate([np.asarray(p.images) for p in parts]))
    return ExtraRows(np.concatenate([p.files for p in parts]), np.concatenate(targets), images)


def sampler_labels(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """One class per row for the class-balanced sampler: the (teacher's) likeliest class."""
    return targets if targets.ndim == 1 else targets[:, -num_classes:].argmax(axis=1)

