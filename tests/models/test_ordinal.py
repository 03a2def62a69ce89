"""Ordinal heads: output widths, decoding to a grade, and losses that fall as predictions approach the truth."""

from __future__ import annotations

import numpy as np
import torch

from imgclf.models.ordinal import CoralLoss, RegressionLoss, decode, decode_views


def test_decoding_each_head_to_a_grade() -> None:
    assert decode(np.array([[2.0], [0.5]]), "regression", 10.0, 4.0).tolist() == [18.0, 12.0]
    sure = np.full((1, 5), -30.0)
    sure[0, 3] = 30.0
    assert abs(decode(sure, "classification")[0] - 3.0) < 1e-9
    assert abs(decode(np.zeros((1, 5)), "classification")[0] - 2.0) < 1e-9  # uniform: the mean grade
    coral = np.array([[30.0, 30.0, -30.0, -30.0]])  # P(grade > 0), P(> 1) sure; P(> 2), P(> 3) not
    assert abs(decode(coral, "coral")[0] - 2.0) < 1e-9
    views = np.array([[[1.0]], [[3.0]]])  # two TTA views of one row
    assert decode_views(views, "regression", 0.0, 1.0).tolist() == [2.0]


def test_losses_prefer_the_true_grade() -> None:
    target = torch.tensor([3, 0])
    coral = CoralLoss()
    good = torch.tensor([[9.0, 9.0, 9.0, -9.0], [-9.0, -9.0, -9.0, -9.0]])
    assert coral(good, target) < 0.01 < coral(-good, target)
    reg = RegressionLoss("mse", centre=50.0, scale=10.0)
    assert reg(torch.tensor([[1.0]]), torch.tensor([60.0])) < 1e-9
    assert reg(torch.tensor([[0.0]]), torch.tensor([60.0])) > 0.4
    assert RegressionLoss()(torch.tensor([[0.0]]), torch.tensor([3.0])) == 2.5  # SmoothL1: linear tail
