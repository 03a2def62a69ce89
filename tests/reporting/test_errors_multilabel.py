"""Multi-label error analysis, checked against hand computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.reporting.errors import calibration_error
from imgclf.reporting.errors_multilabel import per_row_bce, write_multilabel_error_analysis

CLASSES = ["haze", "water", "road"]
LABELS = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
PROBS = np.array([
    [0.9, 0.1, 0.2],  # right
    [0.2, 0.3, 0.9],  # water missed
    [0.6, 0.7, 0.95],  # road added, very sure: the largest loss
    [0.1, 0.1, 0.8],  # right
])


def _bce(y: int, p: float) -> float:
    return -math.log(p) if y else -math.log(1 - p)


def test_summed_bce_by_hand() -> None:
    by_hand = [sum(_bce(y, p) for y, p in zip(ly, lp, strict=True))
               for ly, lp in zip(LABELS, PROBS, strict=True)]
    np.testing.assert_allclose(per_row_bce(LABELS, PROBS), by_hand)


def test_files_and_tables(tmp_path: Path) -> None:
    out = tmp_path / "errors"
    summary = write_multilabel_error_analysis(LABELS, PROBS, CLASSES, list("abcd"), [tmp_path / "x.png"] * 4,
                                              out, k=2)
    top = pd.read_csv(out / "top_losses.csv")
    assert top["id"].tolist() == ["c", "b"]  # rows by summed BCE: c (road 0.95 wrong), then b
    assert top.loc[0, "true"] == "haze water" and top.loc[0, "predicted"] == "haze water road"
    assert top.loc[0, "worst_label"] == "road" and math.isclose(top.loc[0, "prob_predicted"], 0.95)
    per = pd.read_csv(out / "per_class.csv").set_index("class")
    # water: predicted in row 2 only (right) -> precision 1; true in rows 1, 2 -> recall 1/2
    assert per.loc["water", "precision"] == 1.0 and per.loc["water", "recall"] == 0.5
    # road: predicted in rows 1, 2, 3 (2 right) -> precision 2/3; support 2
    assert math.isclose(per.loc["road", "precision"], 2 / 3) and per.loc["road", "support"] == 2
    pairs = pd.read_csv(out / "confused_pairs.csv")
    assert sorted(map(tuple, pairs.values.tolist())) == [("(absent)", "road", 1), ("water", "(missed)", 1)]
    assert math.isclose(summary["ece"], calibration_error(LABELS.ravel(), PROBS.ravel()))
    assert summary["accuracy"] == 0.5 and json.loads((out / "summary.json").read_text())["n"] == 4
    assert (out / "top_losses.png").is_file() and (out / "reliability.png").is_file()
