"""Ingest of the mask-competition layout: labels, ids, hidden files, person-grouped folds, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from imgclf.cli import common_parser, run_stage
from imgclf.data.folds import assign_folds, make_folds, read_folds
from imgclf.data.ingest import detect_layout, load_competition
from imgclf.errors import DataError
from imgclf.stages import folds_stage
from tests.helpers.datasets import MASK_STEMS, make_mask_dataset
from tests.helpers.runs import paths_of

# The competition's definition, written out by hand rather than computed by the code under test.
MASK_OF_FILE = {"mask1": 0, "mask2": 0, "mask3": 0, "mask4": 0, "mask5": 0, "incorrect_mask": 1, "normal": 2}
AGE_GROUP = {29: 0, 30: 1, 59: 1, 60: 2}


def _load(fast_cfg, data_dir: Path, *overrides: str):
    cfg = fast_cfg(data_dir, *overrides)
    return cfg, load_competition(cfg, paths_of(cfg))


def test_label_composition_every_corner_case(tmp_path: Path, fast_cfg) -> None:
    ages = [29, 30, 59, 60] * 2
    genders = ["male"] * 4 + ["female"] * 4
    data = make_mask_dataset(tmp_path / "mask", ages=ages, genders=genders, n_test=3)
    assert detect_layout(data) == "mask"
    _, comp = _load(fast_cfg, data)
    assert len(comp.train) == 7 * len(ages)
    seen = set()
    for row in comp.train.itertuples():
        folder, stem = row.id.split("/")
        _, gender, _, age = folder.split("_")
        expected = MASK_OF_FILE[stem] * 6 + {"male": 0, "female": 1}[gender] * 3 + AGE_GROUP[int(age)]
        assert row.label == expected, row.id
        assert (row.mask, row.gender, row.age_group) == (MASK_OF_FILE[stem], int(gender == "female"),
                                                         AGE_GROUP[int(age)])
        assert Path(row.path).parent.name == folder and Path(row.path).stem == stem
        seen.add(expected)
    # Spot checks of the formula at its extremes and at each age boundary.
    label = dict(zip(comp.train["id"], comp.train["label"], strict=True))
    assert label["000001_male_Asian_29/mask1"] == 0
    assert label["000002_male_Asian_30/incorrect_mask"] == 7
    assert label["000003_male_Asian_59/normal"] == 13
    assert label["000004_male_Asian_60/mask5"] == 2
    assert label["000005_female_Asian_29/normal"] == 15
    assert label["000008_female_Asian_60/normal"] == 17
    assert seen == set(range(18))
    assert comp.class_values == list(range(18)) and comp.num_classes == 18
    assert comp.attributes == ["mask", "gender", "age_group"]
    assert {Path(p).suffix for p in comp.train["path"]} == {".jpg", ".jpeg", ".png"}
    assert (comp.id_column, comp.target_columns, comp.submission_kind) == ("ImageID", ["ans"], "label")
    assert comp.train.groupby("group")["id"].count().eq(7).all()


def test_hidden_files_ignored_and_test_in_info_order(tmp_path: Path, fast_cfg) -> None:
    data = make_mask_dataset(tmp_path / "mask", n_people=6, n_test=9)
    hidden = list(data.rglob("._*"))
    assert hidden  # the fixture does write AppleDouble files: a real trap for the ingest
    _, comp = _load(fast_cfg, data)
    assert not any(Path(p).name.startswith("._") for p in [*comp.train["path"], *comp.test["path"]])
    assert len(comp.train) == 6 * 7
    info = pd.read_csv(data / "eval" / "info.csv")
    assert comp.test["id"].tolist() == info["ImageID"].tolist()
    assert [Path(p).name for p in comp.test["path"]] == info["ImageID"].tolist()
    assert comp.sample_submission.columns.tolist() == ["ImageID", "ans"]
    stems = {row.split("/")[1] for row in comp.train["id"]}
    assert stems == set(MASK_STEMS)


def test_info_ids_without_extension(tmp_path: Path, fast_cfg) -> None:
    data = make_mask_dataset(tmp_path / "mask", n_people=3, n_test=6)
    info = pd.read_csv(data / "eval" / "info.csv")
    info.assign(ImageID=[Path(i).stem for i in info["ImageID"]]).to_csv(data / "eval" / "info.csv",
                                                                        index=False)
    _, comp = _load(fast_cfg, data)
    assert comp.test["id"].tolist() == [Path(i).stem for i in info["ImageID"]]
    assert [Path(p).name for p in comp.test["path"]] == info["ImageID"].tolist()


def test_folds_group_people_and_stratify(tmp_path: Path, fast_cfg) -> None:
    data = make_mask_dataset(tmp_path / "mask", n_people=36, n_test=3)
    cfg, comp = _load(fast_cfg, data)
    paths = paths_of(cfg)
    make_folds(cfg, paths, comp)
    folds_csv = pd.read_csv(paths.folds_csv, dtype={"ImageID": str, "group": str})
    assert folds_csv.columns.tolist() == ["ImageID", "ans", "group", "fold"]
    assert folds_csv["ImageID"].tolist() == comp.train["id"].tolist()
    assert folds_csv.groupby("group")["fold"].nunique().max() == 1  # no person in two folds
    # Every person folder appears under one fold only, whatever the split.
    folder = folds_csv["ImageID"].str.split("/").str[0]
    assert folds_csv.groupby(folder)["fold"].nunique().max() == 1
    # 6 people per (gender, age group): stratification on the 18 classes puts 3 in each fold.
    per_fold = folds_csv.groupby(["ans", "fold"]).size().unstack(fill_value=0)
    assert per_fold.shape == (18, 2) and (per_fold[0] == per_fold[1]).all(), per_fold
    assert np.array_equal(read_folds(paths, comp), folds_csv["fold"].to_numpy())
    for k, seed in ((5, 0), (3, 7)):
        fold = assign_folds(comp, k, seed)
        assert pd.Series(fold).groupby(comp.train["group"].to_numpy()).nunique().max() == 1
        assert sorted(np.unique(fold)) == list(range(k))


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_training_only_age_threshold(tmp_path: Path, fast_cfg) -> None:
    from imgclf.training.fold import build_fold_run

    data = make_mask_dataset(tmp_path / "mask", ages=[25, 58, 59, 60, 40, 61], n_test=3)
    cfg, comp = _load(fast_cfg, data, "data.mask_train_old_age_threshold=58")
    by_age = comp.train.groupby("age")[["label", "train_label"]].first()
    assert by_age.loc[58, "label"] % 3 == 1 and by_age.loc[58, "train_label"] % 3 == 2
    assert by_age.loc[59, "label"] % 3 == 1 and by_age.loc[59, "train_label"] % 3 == 2
    for age in (25, 40, 60, 61):
        assert by_age.loc[age, "label"] == by_age.loc[age, "train_label"]
    paths = paths_of(cfg)
    frame = make_folds(cfg, paths, comp)
    assert frame["ans"].tolist() == comp.train["label"].tolist()  # folds.csv keeps the scored labels
    folds = read_folds(paths, comp)
    run = build_fold_run(cfg, paths, comp, folds, 0, tmp_path / "fold0")
    tr, va = folds != 0, folds == 0
    assert np.array_equal(run.train_ds.labels, comp.train["train_label"].to_numpy()[tr])
    assert np.array_equal(run.valid_ds.labels, comp.train["label"].to_numpy()[va])
    _, plain = _load(fast_cfg, data)
    assert "train_label" not in plain.train  # off by default: nothing changes


def _break(data: Path, how: str) -> None:
    train_csv = data / "train" / "train.csv"
    people = pd.read_csv(train_csv, dtype=str)
    first = data / "train" / "images" / people["path"][0]
    if how == "folder":
        shutil.rmtree(data / "train" / "images" / people["path"][2])
    elif how == "file":
        next(first.glob("incorrect_mask.*")).unlink()
    elif how == "gender":
        people.loc[1, "gender"] = "unknown"
    elif how == "age":
        people.loc[3, "age"] = "forty"
    elif how == "column":
        people = people.drop(columns="age")
    elif how == "duplicate":
        cv2.imwrite(str(first / "mask2.png"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(first / "mask2.jpg"), np.zeros((8, 8, 3), np.uint8))
    elif how == "info":
        pd.read_csv(data / "eval" / "info.csv").rename(columns={"ImageID": "image"}).to_csv(
            data / "eval" / "info.csv", index=False)
    elif how == "test_image":
        sorted((data / "eval" / "images").glob("[!.]*"))[0].unlink()
    people.to_csv(train_csv, index=False)


@pytest.mark.parametrize(("how", "expected"), [
    ("folder", r"train\.csv row 4: person folder not found: .*000003_male_Asian_30"),
    ("file", r"000001_male_Asian_29: missing incorrect_mask\.\*"),
    ("gender", r"train\.csv row 3 column 'gender': 'unknown' is not male/female"),
    ("age", r"train\.csv row 5 column 'age': 'forty' is not an age"),
    ("column", r"train\.csv: missing column\(s\) \['age'\]"),
    ("duplicate", r"000001_male_Asian_29: several files for 'mask2'"),
    ("info", r"info\.csv: missing column 'ImageID'"),
    ("test_image", r"info\.csv row \d+: no image file for id"),
])
def test_data_errors_name_the_problem(tmp_path: Path, fast_cfg, how: str, expected: str) -> None:
    data = make_mask_dataset(tmp_path / "mask", n_people=6, n_test=4)
    _break(data, how)
    with pytest.raises(DataError, match=expected):
        _load(fast_cfg, data)


def test_stage_prints_one_error_line(tmp_path: Path, capsys) -> None:
    data = make_mask_dataset(tmp_path / "mask", n_people=4, n_test=2)
    _break(data, "gender")
    code = run_stage(common_parser("folds"), folds_stage,
                     ["--data", str(data), "--set", f"paths.root={tmp_path / 'project'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and "column 'gender'" in err[-1] and "train.csv row 3" in err[-1]


def test_age_thresholds_must_be_ordered(tmp_path: Path, fast_cfg) -> None:
    data = make_mask_dataset(tmp_path / "mask", n_people=3, n_test=2)
    with pytest.raises(DataError, match="mask_young_age_threshold must be below"):
        _load(fast_cfg, data, "data.mask_young_age_threshold=60", "data.mask_old_age_threshold=30")
