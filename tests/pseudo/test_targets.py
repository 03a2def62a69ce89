"""Selection of the test images to pseudo-label, and the distillation loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imgclf.config.loading import load_config
from imgclf.config.schema import PseudoConfig
from imgclf.data.folds import make_folds
from imgclf.data.ingest import load_competition
from imgclf.models.losses import DistillationLoss
from imgclf.paths import Paths
from imgclf.pseudo.targets import probabilities_at, select_rows, student_fold
from imgclf.pseudo.teacher import FoldLogits
from tests.helpers.datasets import make_mask_dataset


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


def test_a_threshold_alone_selects_by_threshold_beside_the_default_top_fraction():
    cfg = load_config(None, ["pseudo.threshold=0.9"])  # default.yaml's top_fraction: 0.5 stays set
    assert cfg.pseudo.top_fraction == 0.5
    probs = np.array([[0.99, 0.01]] * 8 + [[0.4, 0.6], [0.45, 0.55]])
    assert select_rows(probs, cfg.pseudo, multi_label=False).tolist() == list(range(8))  # not top half
    every = load_config(None, ["pseudo.top_fraction=null"]).pseudo
    assert select_rows(probs, every, multi_label=False).tolist() == list(range(10))


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_distillation_hard_labels_are_the_training_labels_not_the_scored_ones(tmp_path, fast_cfg):
    data = make_mask_dataset(tmp_path / "mask", ages=[25, 58, 59, 60, 40, 61, 58, 59], n_test=3)
    cfg = fast_cfg(data, "data.mask_train_old_age_threshold=58")
    paths = Paths.from_config(cfg)
    comp = load_competition(cfg, paths)
    folds = make_folds(cfg, paths, comp)["fold"].to_numpy()
    fit = comp.train["train_label"].to_numpy()
    assert (fit[folds != 0] != comp.labels[folds != 0]).any()  # ages 58-59 are relabelled in fold 0's train
    c = comp.num_classes
    logits = FoldLogits(0, np.zeros((len(comp.test), c), np.float32),
                        np.zeros((int((folds != 0).sum()), c), np.float32), [])
    student, _ = student_fold(PseudoConfig(mode="distill"), comp, folds, logits, None)
    assert np.array_equal(student.train_targets[:, :c].argmax(axis=1), fit[folds != 0])


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
