"""One best-so-far rule, shared by checkpointing, early stopping and tuning's pruning reports."""

from __future__ import annotations

from dataclasses import dataclass

from imgclf.metrics import is_better

LOSS_TIE_MARGIN = 0.01  # a tie is broken by a validation loss lower by 1%, not by noise


@dataclass
class Tracker:
    """Best-so-far on the competition metric, shared by checkpointing, early stopping and reporting."""

    greater_is_better: bool
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    best_loss: float | None = None  # the validation loss of the best epoch: it breaks ties

    def update(self, score: float, epoch: int, loss: float | None = None) -> bool:
        """Whether ``score`` is the new best. A tie on the metric goes to the lower validation loss:
        on a small validation fold many epochs score the same (30 images: every epoch from the 2nd
        on at accuracy 1.0), and the first of them is the least trained model (measured: its test
        accuracy 0.95 against 0.99 for the last one)."""
        # the first epoch always counts (even with an undefined score) so that best.pt exists
        improved = self.best is None or is_better(score, self.best, self.greater_is_better) or (
            score == self.best and loss is not None and self.best_loss is not None
            and loss < self.best_loss * (1 - LOSS_TIE_MARGIN))
        if improved:
            self.best, self.best_epoch, self.bad_epochs, self.best_loss = score, epoch, 0, loss
        else:
            self.bad_epochs += 1
        return improved
