"""The TTA gain is the OOF metric with the views minus the plain OOF metric, on the same rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imgclf.config.loading import load_config
from imgclf.data.competition import Competition
from imgclf.inference.tta import tta_gain
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
