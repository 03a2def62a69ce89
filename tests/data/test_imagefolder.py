"""The ImageFolder layout: one folder per class, ids from the file stems, class names kept as written."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.datasets import load_fixture, write_imagefolder


def test_imagefolder_layout(tmp_path: Path, fast_cfg) -> None:
    root = tmp_path / "folders"
    write_imagefolder(root, ("zebra", "ant", "bee"), per_class=3, n_test=4)
    comp, paths = load_fixture(fast_cfg, root)
    assert (comp.layout, comp.id_column, comp.target_columns) == ("imagefolder", "id", ["label"])
    assert comp.class_values == ["ant", "bee", "zebra"]
    assert len(comp.train) == 9 and comp.train["id"].iloc[0] == "ant/img0"
    assert comp.test["id"].tolist() == ["t0", "t1", "t2", "t3"]  # hidden ._t0.png ignored
    assert json.loads(paths.classes_json.read_text())["classes"] == ["ant", "bee", "zebra"]


def test_imagefolder_zero_padded_class_folders_stay_names(tmp_path: Path, fast_cfg) -> None:
    root = tmp_path / "gtsrb"
    write_imagefolder(root, ("00", "01", "10"), per_class=2, n_test=2)
    comp, _ = load_fixture(fast_cfg, root)
    assert comp.class_values == ["00", "01", "10"]
    assert comp.train["id"].tolist()[:2] == ["00/img0", "00/img1"]
