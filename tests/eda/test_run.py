"""The EDA on real image files: it flags injected problems, never crashes on them, and writes its plots."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from imgclf.data.ingest import load_competition
from imgclf.eda.run import run_eda
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import paths_of, run_script


def _file(root: Path, split: str, image_id: str) -> Path:
    return root / split / f"{image_id}.jpg"


@pytest.fixture
def flawed_dir(tmp_path: Path) -> Path:
    """66 train images relabelled 60 cat : 6 dog, then one truncated, one zero-byte, duplicates injected."""
    root = make_kaggle_dataset(tmp_path / "flawed", classes=("cat", "dog"), n_train=66, n_test=12)
    train = pd.read_csv(root / "train.csv", dtype=str)
    train["label"] = ["dog" if i % 11 == 0 else "cat" for i in range(len(train))]  # 6 dogs
    train.to_csv(root / "train.csv", index=False)
    test_ids = pd.read_csv(root / "sample_submission.csv", dtype=str)["image_id"]
    ids = train["image_id"]
    data = _file(root, "train", ids[1]).read_bytes()
    _file(root, "train", ids[1]).write_bytes(data[: len(data) // 2])  # truncated mid-scan
    _file(root, "test", test_ids[0]).write_bytes(b"")  # zero-byte
    shutil.copyfile(_file(root, "train", ids[2]), _file(root, "train", ids[11]))  # a cat's bytes as a dog
    shutil.copyfile(_file(root, "train", ids[3]), _file(root, "test", test_ids[1]))  # train image in test
    (root / "train" / f"._{ids[4]}.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    return root


def test_eda_flags_injected_problems(flawed_dir: Path, fast_cfg) -> None:
    cfg = fast_cfg(flawed_dir)
    paths = paths_of(cfg)
    summary = run_eda(cfg, paths, load_competition(cfg, paths))
    train = pd.read_csv(flawed_dir / "train.csv", dtype=str)["image_id"]
    test = pd.read_csv(flawed_dir / "sample_submission.csv", dtype=str)["image_id"]

    assert summary["class_counts"] == {"cat": 60, "dog": 6}
    assert summary["imbalance_ratio"] == pytest.approx(10.0)
    bad = {b["id"]: b["status"] for b in summary["bad_files"]}
    assert set(bad) == {train[1], test[0]} and bad[test[0]] == "empty"
    assert bad[train[1]] in ("unreadable", "truncated")  # decoders differ on a half file; both are corrupt
    assert summary["train_images"] == 66  # the hidden ._ file is not an image of the competition
    dups = summary["duplicates"]
    assert ((dups["within_train"], dups["conflicting_labels"], dups["within_test"], dups["across"])
            == (1, 1, 0, 1))

    flags = "\n".join(summary["flags"])
    assert "class imbalance 10.0:1" in flags
    assert f"1 corrupt or unreadable file(s): train/{train[1]}.jpg" in flags
    assert f"1 zero-byte file(s): test/{test[0]}.jpg" in flags
    assert "1 set(s) of identical images within train, 1 with conflicting labels" in flags
    assert "1 test image(s) identical to a train image" in flags

    eda = paths.eda_dir
    report = (eda / "report.md").read_text()
    for text in (f"train/{train[1]}.jpg", f"test/{test[0]}.jpg", "**CONFLICT**", train[2], train[11],
                 test[1], "**10.00:1**"):
        assert text in report
    duplicates = pd.read_csv(eda / "duplicates.csv", dtype=str)
    assert sorted(duplicates["train_ids"]) == sorted([f"{train[2]} {train[11]}", train[3]])
    linked = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert {"class_counts.png", "sample_grid.png", "image_sizes.png", "size_shift.png"} <= set(linked)
    for name in linked:  # every linked figure exists and is a decodable, non-trivial PNG
        image = cv2.imread(str(eda / name))
        assert image is not None and min(image.shape[:2]) > 100, name
    assert json.loads((eda / "summary.json").read_text())["imbalance_ratio"] == pytest.approx(10.0)
    files = pd.read_csv(eda / "files.csv", dtype=str)
    assert len(files) == 66 + 12 and (files["status"] == "ok").sum() == 66 + 12 - 2


def test_clean_data_raises_no_flag_and_groups_attributes_shift(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "clean", n_train=60, n_test=20, groups=True)
    cfg = fast_cfg(root)
    paths = paths_of(cfg)
    comp = load_competition(cfg, paths)
    assert run_eda(cfg, paths, comp)["flags"] == []

    for path in (root / "test").iterdir():  # test images twice the size of train images: a shift
        cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path)), (64, 64)))
    comp.train["mask"] = np.arange(len(comp.train)) % 3
    comp.attributes = ["mask", "not_a_column"]
    summary = run_eda(cfg, paths, comp)
    assert summary["groups"]["groups"] == 20 and summary["groups"]["images_per_group"]["max"] == 3
    assert summary["attributes"] == {"mask": {"0": 20, "1": 20, "2": 20}}
    shifted = {row["column"] for row in summary["shift"] if row["shifted"]}
    assert "short_side" in shifted
    assert any(flag.startswith("train/test shift in short side") for flag in summary["flags"])
    assert (paths.eda_dir / "groups.png").is_file() and (paths.eda_dir / "attributes.png").is_file()


def test_eda_survives_a_data_set_without_one_decodable_image(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "broken", n_train=9, n_test=3)
    for path in (root / "train").iterdir():
        path.write_bytes(b"")
    for i, path in enumerate(sorted((root / "test").iterdir())):
        path.write_bytes(b"not an image %d" % i)
    cfg = fast_cfg(root, "data.image_size=null")
    paths = paths_of(cfg)
    summary = run_eda(cfg, paths, load_competition(cfg, paths))
    assert summary["flags"][:2] == [
        "3 corrupt or unreadable file(s): "
        f"{', '.join(f'test/{p.name}' for p in sorted((root / 'test').iterdir()))}",
        "9 zero-byte file(s): " + ", ".join(f"train/{p.name}" for p in sorted((root / "train").iterdir())[:5])
        + " (+4 more)"]
    assert summary["image_size"]["suggested"] is None and summary["shift"] == []
    assert "| test | 3 | 0 |" in (paths.eda_dir / "report.md").read_text()


def test_eda_script_prints_summary(flawed_dir: Path, tmp_path: Path) -> None:
    result = run_script("pipelines/01_eda.py", "--data", str(flawed_dir), root=tmp_path / "project")
    assert result.returncode == 0, result.stderr
    assert "FLAG: class imbalance 10.0:1" in result.stdout
    assert "1 corrupt/unreadable, 1 zero-byte" in result.stdout
    assert "suggested data.image_size=32" in result.stdout
    assert (tmp_path / "project" / "models" / "flawed" / "eda" / "report.md").is_file()
