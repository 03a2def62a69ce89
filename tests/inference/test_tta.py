"""The TTA gain is the OOF metric with the views minus the plain OOF metric, on the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.config.loading import load_config
from imgclf.data.competition import Competition
from imgclf.inference.tta import candidate_groups, select_views, tta_gain
from imgclf.paths import Paths


def test_gain_is_measured_on_the_same_oof_rows(tmp_path: Path) -> None:
    cfg = load_config(None, [f"paths.root={tmp_path}", f"data.dir={tmp_path / 'comp'}"])
    paths = Paths.from_config(cfg)
    train = pd.DataFrame({"id": ["a", "b", "c", "d"], "path": "", "label": [0, 1, 1, 0]})
    comp = Competition(name="comp", data_dir=tmp_path, layout="csv", train=train, test=train.iloc[:0],
                       class_values=["x", "y"], id_column="id", target_columns=["label"],
                       submission_kind="label", train_targets=train[["id", "label"]])
    plain = {0: [("a", 0.6), ("c", 0.4)], 1: [("b", 0.7), ("d", 0.8)]}  # a, c, d wrong; b right
    for fold, rows in plain.items():
        paths.fold_dir(fold).mkdir(parents=True)
        pd.DataFrame([{"id": i, "fold": fold, "x": 1 - p, "y": p} for i, p in rows]).to_csv(
            paths.fold_oof(fold), index=False)
    # with TTA (rows in train order): a, c and d right, b wrong
    oof_tta = pd.DataFrame({"id": list("abcd"), "fold": [0, 1, 0, 1], "x": [0.9, 0.6, 0.2, 0.7],
                            "y": [0.1, 0.4, 0.8, 0.3]})
    tta = tta_gain(cfg, paths, comp, "baseline", oof_tta, ["identity", "hflip"])
    assert (tta["oof_plain"], tta["oof_tta"]) == (pytest.approx(0.25), pytest.approx(0.75))
    assert tta["gain"] == pytest.approx(0.5) and tta["views"] == ["identity", "hflip"]


def _logits_of(probs: list[list[float]]) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float64))


def test_the_turns_are_tried_together_and_a_tie_goes_to_the_lower_log_loss() -> None:
    labels = np.array([0, 1, 1, 0])
    identity = _logits_of([[0.6, 0.4], [0.4, 0.6], [0.45, 0.55], [0.9, 0.1]])  # all right, unsure
    sure = _logits_of([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8], [0.9, 0.1]])  # all right, surer
    wrong = _logits_of([[0.2, 0.8], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])  # all wrong
    views = ["identity", "hflip", "rot90", "rot180", "rot270"]
    assert candidate_groups(views, 0) == [[2, 3, 4], [1]]
    assert candidate_groups(["identity", "rot90", "rot270"], 0) == [[1], [2]]
    # the turns are as accurate as identity alone (a tie) and surer: kept; the flip costs accuracy
    per_view = np.stack([identity, wrong, sure, sure, sure])
    assert select_views(per_view, labels, views, "accuracy") == [0, 2, 3, 4]
    # the same tie with less sure turns: dropped
    unsure = _logits_of([[0.55, 0.45], [0.45, 0.55], [0.5, 0.5], [0.55, 0.45]])
    per_view = np.stack([identity, wrong, unsure, unsure, unsure])
    assert select_views(per_view, labels, views, "accuracy") == [0]


def _rows(n_right: int, p_right: float, n_wrong: int, p_wrong: float) -> np.ndarray:
    """Logits of two-class rows whose label is class 0: ``p_right`` on it for the first rows, then
    ``p_wrong`` (below 0.5: a wrong prediction)."""
    p = np.r_[np.full(n_right, p_right), np.full(n_wrong, p_wrong)]
    return _logits_of(np.c_[p, 1 - p].tolist())


def test_a_view_that_lowers_the_log_loss_is_kept_when_the_score_drops_within_its_paired_noise() -> None:
    labels = np.zeros(100, dtype=int)
    identity = _rows(100, 0.55, 0, 0.0)  # all right, unsure
    # surer everywhere, one row turned wrong: accuracy 1.00 -> 0.99, sqrt(1) / 100 = 0.01 of noise
    one_lost = _rows(99, 0.99, 1, 0.3)
    assert select_views(np.stack([identity, one_lost]), labels, ["identity", "hflip"], "accuracy") == [0, 1]
    # ten rows turned wrong (0.10 against sqrt(10) / 100 = 0.03 of noise), although the log loss falls
    ten_lost = _rows(90, 0.99, 10, 0.05)
    assert select_views(np.stack([identity, ten_lost]), labels, ["identity", "hflip"], "accuracy") == [0]
