"""Ingest: the layout detected from the files, a forced one checked, the class list pinned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgclf.data.ingest import detect_layout
from imgclf.errors import DataError
from tests.helpers.datasets import load_fixture, make_kaggle_dataset, make_mask_dataset, write_imagefolder


def test_a_forced_layout_without_its_folder_is_a_data_error(tmp_path: Path, fast_cfg) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="train image folder not found"):
        load_fixture(fast_cfg, tmp_path / "empty", "data.layout=imagefolder")




def test_the_layout_is_detected_from_the_files(tmp_path: Path) -> None:
    kaggle = make_kaggle_dataset(tmp_path / "kaggle", n_train=3, n_test=1)
    folders = tmp_path / "folders"
    write_imagefolder(folders, ("a", "b"), per_class=1, n_test=1)
    mask = make_mask_dataset(tmp_path / "mask", n_people=1, n_test=1)
    assert [detect_layout(d) for d in (kaggle, folders, mask)] == ["csv", "imagefolder", "mask"]
    (tmp_path / "nothing" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"train\.csv not found .* holds no class folders"):
        detect_layout(tmp_path / "nothing")


def test_loading_records_the_class_list_and_refuses_a_changed_one(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "comp", classes=("b", "a"), n_train=4, n_test=1)
    comp, paths = load_fixture(fast_cfg, root)
    assert json.loads(paths.classes_json.read_text())["classes"] == comp.classes == ["a", "b"]
    (root / "train.csv").write_text((root / "train.csv").read_text().replace(",b\n", ",c\n"))
    with pytest.raises(DataError, match="the class list .* changed"):
        load_fixture(fast_cfg, root)
