"""One best-so-far rule, shared by checkpointing, early stopping and tuning's pruning reports."""

from __future__ import annotations

from dataclasses import dataclass

from imgclf.metrics import is_better


@dataclass
class Tracker:
    """Best-so-far on the competition metric, shared by checkpointing, early stopping and reporting."""

    greater_is_better: bool
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, score: float, epoch: int) -> bool:
        # the first epoch always counts (even with an undefined score) so that best.pt exists
        improved = self.best is None or is_better(score, self.best, self.greater_is_better)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
        else:
            self.bad_epochs += 1
        return improved
