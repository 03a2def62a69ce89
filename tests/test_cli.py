"""Bad input through the real stage scripts: one ``error:`` line naming the culprit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.runs import run_script


def _fails_with(result, *named: str) -> str:
    """Assert a user-error exit: non-zero, exactly one ``error:`` line, naming every ``named`` text."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for text in named:
        assert text in errors[0], errors[0]
    return errors[0]


def _run(script: str, data: Path, tmp_path: Path, *args: str):
    return run_script(f"pipelines/{script}", "--data", str(data), *args, root=tmp_path / "project")


def test_missing_train_csv(kaggle_dir: Path, tmp_path: Path) -> None:
    (kaggle_dir / "train.csv").unlink()
    _fails_with(_run("02_folds.py", kaggle_dir, tmp_path), str(kaggle_dir / "train.csv"), "not found")


def test_missing_image_named_in_train_csv(kaggle_dir: Path, tmp_path: Path) -> None:
    image_id = pd.read_csv(kaggle_dir / "train.csv", dtype=str)["image_id"][5]
    (kaggle_dir / "train" / f"{image_id}.jpg").unlink()
    _fails_with(_run("01_eda.py", kaggle_dir, tmp_path), "train.csv row 7", f"'{image_id}'", "no image file")


def test_sample_submission_ids_without_test_files(kaggle_dir: Path, tmp_path: Path) -> None:
    sample = pd.read_csv(kaggle_dir / "sample_submission.csv", dtype=str)
    sample.loc[len(sample)] = ["not_in_test", "cat"]
    sample.to_csv(kaggle_dir / "sample_submission.csv", index=False)
    _fails_with(_run("02_folds.py", kaggle_dir, tmp_path), "sample_submission.csv", "'not_in_test'",
                str(kaggle_dir / "test"))


def test_id_column_absent_from_sample_submission(kaggle_dir: Path, tmp_path: Path) -> None:
    _fails_with(_run("02_folds.py", kaggle_dir, tmp_path, "--set", "data.id_column=file_name"),
                "sample_submission.csv", "id column 'file_name' not found")


@pytest.mark.parametrize("missing", ["", "NaN"])
def test_nan_labels(kaggle_dir: Path, tmp_path: Path, missing: str) -> None:
    train = pd.read_csv(kaggle_dir / "train.csv", dtype=str)
    train.loc[3, "label"] = missing
    train.to_csv(kaggle_dir / "train.csv", index=False)
    _fails_with(_run("02_folds.py", kaggle_dir, tmp_path), "train.csv", "column 'label'", "row 5",
                f"'{train['image_id'][3]}'")


def test_unknown_config_key(kaggle_dir: Path, tmp_path: Path) -> None:
    line = _fails_with(_run("02_folds.py", kaggle_dir, tmp_path, "--set", "train.epoch=3"))
    assert line == "error: unknown config key 'train.epoch'; did you mean 'train.epochs'?"


def test_wrong_value_type(kaggle_dir: Path, tmp_path: Path) -> None:
    _fails_with(_run("01_eda.py", kaggle_dir, tmp_path, "--set", "train.epochs=abc"),
                "config key 'train.epochs'", "'abc'")


def test_missing_data_folder_and_config_file(tmp_path: Path) -> None:
    _fails_with(_run("01_eda.py", tmp_path / "nowhere", tmp_path), str(tmp_path / "nowhere"))
    _fails_with(_run("02_folds.py", tmp_path, tmp_path, "--config", str(tmp_path / "none.yaml")),
                "config file not found", "none.yaml")


def test_help_lists_the_common_options() -> None:
    result = run_script("pipelines/01_eda.py", "--help")
    assert result.returncode == 0 and result.stderr == ""
    for option in ("--data", "--config", "--set", "EDA report"):
        assert option in result.stdout


def test_the_mask_layout_defaults_to_its_competition_metric(tmp_path: Path) -> None:
    """Macro-F1 scores the mask competition: its layout gets it unless the user set a metric."""
    from imgclf.cli import common_parser, config_from_args
    from tests.helpers.datasets import make_kaggle_dataset, make_mask_dataset

    mask, kaggle = make_mask_dataset(tmp_path / "mask"), make_kaggle_dataset(tmp_path / "shapes")
    config = tmp_path / "mine.yaml"
    config.write_text("metric: balanced_accuracy\n")

    def metric(*argv: str) -> str:
        return config_from_args(common_parser("test").parse_args(list(argv))).metric
    assert metric("--data", str(mask)) == "f1_macro"
    assert metric("--data", str(mask), "--set", "metric=accuracy") == "accuracy"
    assert metric("--data", str(mask), "--config", str(config)) == "balanced_accuracy"
    assert metric("--data", str(kaggle)) == "accuracy"
    assert metric("--data", str(tmp_path / "missing")) == "accuracy"  # the stage reports the folder
