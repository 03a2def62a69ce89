"""Error analysis from OOF probabilities, checked against hand computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from imgclf.reporting.errors import (
    confused_pairs,
    expected_calibration_error,
    per_class_table,
    per_row_loss,
    write_error_analysis,
)

CLASSES = ["cat", "dog", "fox"]
LABELS = np.array([0, 1, 2, 0, 1, 2])
PROBS = np.array([
    [0.90, 0.05, 0.05],  # right, confident
    [0.70, 0.20, 0.10],  # dog taken for a cat
    [0.10, 0.10, 0.80],  # right
    [0.05, 0.94, 0.01],  # cat taken for a dog, very sure: the largest loss
    [0.60, 0.30, 0.10],  # dog taken for a cat again
    [0.30, 0.30, 0.40],  # right, unsure
])


def test_per_row_loss_is_minus_log_of_the_true_class_probability() -> None:
    by_hand = [-math.log(0.90), -math.log(0.20), -math.log(0.80), -math.log(0.05), -math.log(0.30),
               -math.log(0.40)]
    np.testing.assert_allclose(per_row_loss(LABELS, PROBS), by_hand)


def test_confused_pairs_and_per_class_table() -> None:
    pairs = confused_pairs(LABELS, PROBS, CLASSES)
    assert pairs.values.tolist() == [["dog", "cat", 2], ["cat", "dog", 1]]
    table = per_class_table(LABELS, PROBS, CLASSES).set_index("class")
    # cat: predicted for rows 0, 1, 4 (1 right) -> precision 1/3; true rows 0, 3 -> recall 1/2
    assert table.loc["cat", "precision"] == 1 / 3 and table.loc["cat", "recall"] == 0.5
    assert table.loc["dog", "f1"] == 0.0 and table["support"].tolist() == [2, 2, 2]


def test_ece_by_hand() -> None:
    labels, probs = np.array([0, 0, 1, 1]), np.array([[0.95, 0.05], [0.95, 0.05], [0.65, 0.35], [0.4, 0.6]])
    # bin (0.9, 1.0]: conf 0.95, accuracy 1 -> gap 0.05 on 2 rows; bin (0.6, 0.7]: rows 2 (wrong, 0.65)
    # and 3 (right, 0.6 falls in (0.5, 0.6]) -> gaps 0.65 and 0.4, one row each
    expected = (2 * 0.05 + 0.65 + 0.4) / 4
    assert math.isclose(expected_calibration_error(labels, probs), expected)


def test_the_grid_shows_the_largest_losses_first(tmp_path: Path) -> None:
    paths = []
    for i in range(len(LABELS)):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(np.full((40, 30, 3), 40 * i, dtype=np.uint8)).save(paths[-1])
    ids = [f"id{i}" for i in range(len(LABELS))]
    out = tmp_path / "errors"
    summary = write_error_analysis(LABELS, PROBS, CLASSES, ids, paths, out, k=4)
    top = pd.read_csv(out / "top_losses.csv")
    by_hand = sorted(range(6), key=lambda i: PROBS[i, LABELS[i]])[:4]  # smallest p(true) = largest loss
    assert top["id"].tolist() == [f"id{i}" for i in by_hand] == ["id3", "id1", "id4", "id5"]
    assert top.loc[0, "true"] == "cat" and top.loc[0, "predicted"] == "dog"
    assert math.isclose(top.loc[0, "prob_predicted"], 0.94)
    assert math.isclose(top.loc[0, "loss"], -math.log(0.05))
    for name in ("top_losses.png", "reliability.png"):
        with Image.open(out / name) as im:
            assert im.width > 200 and im.height > 200
    assert summary["accuracy"] == 0.5 and json.loads((out / "summary.json").read_text())["n"] == 6


def test_an_unreadable_image_still_gets_a_grid(tmp_path: Path) -> None:
    out = tmp_path / "errors"
    write_error_analysis(LABELS, PROBS, CLASSES, list("abcdef"), [tmp_path / "missing.png"] * 6, out)
    assert (out / "top_losses.png").is_file() and len(pd.read_csv(out / "top_losses.csv")) == 6
