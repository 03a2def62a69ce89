"""The best-so-far tracker follows the metric's direction."""

from __future__ import annotations

import numpy as np

from imgclf.metrics import get_metric
from imgclf.training.tracking import Tracker


def test_tracker_follows_metric_direction():
    loss = Tracker(get_metric("log_loss").greater_is_better)
    assert ([loss.update(s, e) for e, s in enumerate([0.9, 0.5, 0.7, 0.5, 0.4])]
            == [True, True, False, False, True])
    assert (loss.best, loss.best_epoch, loss.bad_epochs) == (0.4, 4, 0)
    acc = Tracker(True)
    assert [acc.update(s, e) for e, s in enumerate([0.5, 0.7, 0.6])] == [True, True, False]
    assert acc.bad_epochs == 1
    auc = Tracker(True)  # NaN (undefined score) first: kept as the first best, replaced by any real score
    assert [auc.update(s, e) for e, s in enumerate([np.nan, 0.6, np.nan, 0.5])] == [True, True, False, False]
    assert auc.best == 0.6


def test_a_tie_on_the_metric_goes_to_the_lower_validation_loss():
    """Small folds: many epochs at accuracy 1.0; the better-fitted later one must be kept."""
    acc = Tracker(True)
    history = [(0.9, 0.6), (1.0, 0.30), (1.0, 0.35), (1.0, 0.01), (0.97, 0.001), (1.0, 0.01)]
    assert [acc.update(s, e, loss) for e, (s, loss) in enumerate(history)] == [
        True, True, False, True, False, False]
    assert (acc.best, acc.best_epoch, acc.best_loss, acc.bad_epochs) == (1.0, 3, 0.01, 2)
    plain = Tracker(True)  # without losses a tie never replaces the best
    assert [plain.update(s, e) for e, (s, _) in enumerate(history)] == [
        True, True, False, False, False, False]
