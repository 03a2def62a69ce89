"""End to end on Kaggle-layout folders: ``bash run_all.sh --data DIR``, from EDA to the scored submission."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import FAST, TINY_TUNE, run_all

# FAST, plus smaller images and batches: more optimiser steps for the same CPU time, so a few
# epochs learn the colour/shape classes reliably.
OVERRIDES = [*FAST, *TINY_TUNE, "data.image_size=16", "train.batch_size=8", "train.epochs=3",
             "train.lr=0.003", "plan.extra_models=[regnetx_002]"]
STAGES = ("01_eda.py", "02_folds.py", "03_train.py", "03_train.py --extra", "tune.py",
          "03_train.py --tuned", "05_infer.py", "05b_pseudo.py",
          "06_ensemble.py", "07_score.py --auto", "08_report.py")


def run_chain(data: Path, root: Path) -> float:
    """The whole pipeline as a user runs it; returns the accuracy 07_score printed."""
    result = run_all(data, root, *OVERRIDES)
    assert result.returncode == 0, f"run_all.sh failed:\n{result.stderr[-3000:]}"
    started = [line.split(" --")[0].removeprefix("==> ").removeprefix("pipelines/") for line in
               result.stderr.splitlines() if line.startswith("==> ")]
    assert started == [s.split(" --")[0] for s in STAGES], started
    experiments = (root / "models" / data.name / "ensemble" / "ensemble.json").read_text()
    assert '"baseline_tuned"' in experiments  # the tuned config was trained and ensembled
    assert '"baseline_regnetx_002"' in experiments  # and the other architecture family
    return float(result.stdout.split("accuracy:")[1].split()[0])


def submission_of(root: Path, data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    submission = pd.read_csv(root / "submissions" / data.name / "submission.csv", dtype=str)
    return submission, pd.read_csv(data / "sample_submission.csv", dtype=str)


@pytest.mark.slow
def test_string_labels_jpg_ids_without_extension(tmp_path: Path) -> None:
    data = make_kaggle_dataset(tmp_path / "shapes_jpg", classes=("fox", "cat", "dog"), ext=".jpg")
    root = tmp_path / "project"
    accuracy = run_chain(data, root)
    submission, sample = submission_of(root, data)
    assert list(submission.columns) == list(sample.columns) == ["image_id", "label"]
    assert submission["image_id"].tolist() == sample["image_id"].tolist()
    assert not submission["image_id"].str.endswith(".jpg").any()
    assert set(submission["label"]) <= {"fox", "cat", "dog"}
    assert accuracy >= 0.8  # chance is 1/3
    report = (root / "models" / data.name / "report.md").read_text()
    assert "## Ensemble (OOF)" in report and "## TTA" in report


@pytest.mark.slow
def test_png_ids_with_extension_and_probability_submission(tmp_path: Path) -> None:
    data = make_kaggle_dataset(tmp_path / "shapes_png", ext=".png", ids_with_ext=True, proba_submission=True)
    root = tmp_path / "project"
    accuracy = run_chain(data, root)
    submission, sample = submission_of(root, data)
    assert list(submission.columns) == list(sample.columns) == ["image_id", "cat", "dog", "fox"]
    assert submission["image_id"].tolist() == sample["image_id"].tolist()
    assert submission["image_id"].str.endswith(".png").all()
    probs = submission[["cat", "dog", "fox"]].to_numpy(dtype=float)
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert accuracy >= 0.8
    alternatives = root / "submissions" / data.name / "alternatives"
    for name in ("ensemble_hard.csv", "ensemble_stacking.csv", "model_baseline.csv"):
        assert list(pd.read_csv(alternatives / name).columns) == list(sample.columns)
