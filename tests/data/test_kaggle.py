"""The Kaggle CSV layout: ids with or without extension, label and probability submissions,
groups and overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from imgclf.errors import DataError
from tests.helpers.datasets import load_fixture, make_kaggle_dataset


def test_kaggle_layout_string_labels_ids_without_extension_jpg(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "shapes", classes=("fox", "cat", "dog"), n_train=30, n_test=9)
    (root / "train" / "._junk.jpg").write_bytes(b"\x00\x05\x16\x07resource fork")  # macOS leftovers
    (root / "test" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    comp, paths = load_fixture(fast_cfg, root)
    train_csv = pd.read_csv(root / "train.csv", dtype=str)
    sample = pd.read_csv(root / "sample_submission.csv", dtype=str)

    assert (comp.layout, comp.id_column, comp.target_columns, comp.submission_kind) == (
        "csv", "image_id", ["label"], "label")
    assert comp.class_values == ["cat", "dog", "fox"]
    assert comp.train["id"].tolist() == train_csv["image_id"].tolist()
    assert [comp.class_values[i] for i in comp.train["label"]] == train_csv["label"].tolist()
    assert all(p.name == f"{i}.jpg" and p.is_file()
               for i, p in zip(comp.train["id"], comp.train["path"], strict=True))
    assert comp.test["id"].tolist() == sample["image_id"].tolist()  # submission order
    assert all(p.parent == root / "test" for p in comp.test["path"])
    assert not comp.has_groups
    assert not any(p.name.startswith(".") for p in [*comp.train["path"], *comp.test["path"]])

    saved = json.loads(paths.classes_json.read_text())
    assert saved["classes"] == ["cat", "dog", "fox"] and saved["id_column"] == "image_id"


def test_ids_with_extension_and_png(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "png", ext=".png", ids_with_ext=True, n_train=12, n_test=4)
    comp, _ = load_fixture(fast_cfg, root)
    assert all(i.endswith(".png") for i in comp.train["id"])
    assert [p.name for p in comp.train["path"]] == comp.train["id"].tolist()
    assert [p.name for p in comp.test["path"]] == comp.test["id"].tolist()


def test_numeric_labels_keep_numeric_order_and_vocabulary_is_pinned(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "nums", classes=(10, 9, 2), n_train=12, n_test=3)
    comp, paths = load_fixture(fast_cfg, root)
    assert comp.class_values == [2, 9, 10] and comp.classes == ["2", "9", "10"]
    assert json.loads(paths.classes_json.read_text())["values"] == [2, 9, 10]

    train = pd.read_csv(root / "train.csv", dtype=str)
    train.loc[0, "label"] = "11"  # a new class under the existing artefacts
    train.to_csv(root / "train.csv", index=False)
    with pytest.raises(DataError, match=r"classes.json: the class list .* changed"):
        load_fixture(fast_cfg, root)


def test_probability_column_sample_submission(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "proba", classes=("b", "c", "a"), proba_submission=True,
                               n_train=12, n_test=4)
    comp, _ = load_fixture(fast_cfg, root)
    # The probability columns name the classes, in the sample_submission's column order.
    assert comp.submission_kind == "proba"
    assert comp.class_values == ["b", "c", "a"] and comp.target_columns == ["label"]
    labels = pd.read_csv(root / "train.csv", dtype=str)["label"]
    assert [comp.class_values[i] for i in comp.train["label"]] == labels.tolist()


def test_group_column_and_overrides(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "grouped", groups=True, n_train=12, n_test=3)
    (root / "train").rename(root / "pics")
    comp, _ = load_fixture(fast_cfg, root, "data.train_dir=pics")
    assert comp.has_groups and comp.train["group"].tolist()[:4] == ["g0", "g0", "g0", "g1"]
    assert all(p.parent.name == "pics" for p in comp.train["path"])
