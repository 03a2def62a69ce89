"""Selection of the test images to pseudo-label, and the distillation loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imgclf.config.schema import PseudoConfig
from imgclf.models.losses import DistillationLoss
from imgclf.pseudo.targets import probabilities_at, select_rows


def test_top_fraction_is_per_predicted_class_so_a_rare_class_is_not_starved():
    # class 0 predicted confidently 8 times, class 1 (rare) twice with low confidence
    probs = np.array([[0.99, 0.01]] * 8 + [[0.4, 0.6], [0.45, 0.55]])
    rows = select_rows(probs, PseudoConfig(top_fraction=0.5), multi_label=False)
    assert rows.tolist() == [0, 1, 2, 3, 8]  # 4 of class 0, and the better of class 1
    by_threshold = select_rows(probs, PseudoConfig(threshold=0.9, top_fraction=None), multi_label=False)
    assert by_threshold.tolist() == list(range(8))  # a global threshold starves class 1


def test_temperature_softens_and_sharpens():
    logits = np.array([[2.0, 0.0]])
    assert probabilities_at(logits, 2.0, False)[0, 0] < probabilities_at(logits, 1.0, False)[0, 0] \
        < probabilities_at(logits, 0.5, False)[0, 0]


def test_config_refuses_both_selections():
    with pytest.raises(ValueError, match="set one of them"):
        PseudoConfig(threshold=0.9, top_fraction=0.5)


def test_distillation_loss_mixes_hard_ce_and_scaled_kl():
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    teacher = torch.softmax(torch.randn(4, 3) / 2.0, dim=1)
    hard = F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    hard[3] = 0  # an unlabelled test image: KL only
    loss = DistillationLoss(3, alpha=0.3, temperature=2.0)(logits, torch.cat([hard, teacher], dim=1))
    ce = F.cross_entropy(logits[:3], torch.tensor([0, 1, 2]))
    kl = F.kl_div(F.log_softmax(logits / 2.0, dim=1), teacher, reduction="batchmean")
    assert loss.item() == pytest.approx(0.3 * ce.item() + 0.7 * 4.0 * kl.item(), rel=1e-5)
    matched = DistillationLoss(3, alpha=0.0, temperature=1.0)(logits, torch.cat([hard, logits.softmax(1)], 1))
    assert matched.item() == pytest.approx(0.0, abs=1e-6)  # a student equal to its teacher loses nothing
