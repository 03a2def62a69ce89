"""End to end on multi-label folders: ``bash run_all.sh --data DIR`` in the tags layout (Planet-like,
scored by per-image F2) and the one-column-per-label layout grouped by patient (RANZCR-like, AUC)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.metrics import get_metric
from tests.helpers.multilabel import make_multilabel_dataset
from tests.helpers.runs import FAST, TINY_TUNE, run_all

# As the single-label pipeline test: small images and batches, so 3 epochs learn the label cells.
OVERRIDES = [*FAST, *TINY_TUNE, "data.image_size=16", "train.batch_size=8", "train.epochs=3",
             "train.lr=0.003"]


def _run(data: Path, root: Path, *overrides: str) -> tuple[dict, str]:
    result = run_all(data, root, *OVERRIDES, *overrides)
    assert result.returncode == 0, f"run_all.sh failed:\n{result.stderr[-3000:]}"
    assert "task auto -> multi_label" in result.stderr
    summary = json.loads((root / "models" / data.name / "ensemble" / "ensemble.json").read_text())
    assert summary["task"] == "multi_label" and "baseline_tuned" in summary["experiments"]
    return summary, result.stdout


def _submission(root: Path, data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    written = root / "submissions" / data.name / "submission.csv"
    return (pd.read_csv(written, dtype=str, keep_default_na=False),
            pd.read_csv(data / "sample_submission.csv", dtype=str))


@pytest.mark.slow
def test_tags_layout_scored_by_f2_samples(tmp_path: Path) -> None:
    data = make_multilabel_dataset(tmp_path / "planet", n_train=96, n_test=24)
    root = tmp_path / "project"
    summary, stdout = _run(data, root, "metric=f2_samples")
    train = pd.read_csv(data / "train.csv")
    vocab = sorted(train["tags"].str.split().explode().unique())
    truth = np.array([[label in tags.split() for label in vocab] for tags in train["tags"]]).astype(int)
    f2 = get_metric("f2_samples", "multi_label")
    every_label = f2(truth, np.ones_like(truth))  # the all-labels baseline (about 0.71 here)
    fit = summary["thresholds"]
    assert summary["honest_oof_score"] == fit["honest_oof_score"]  # the reported score is cross-fitted
    assert summary["honest_oof_score"] > every_label + 0.15, (summary["honest_oof_score"], every_label)
    submission, sample = _submission(root, data)
    assert list(submission.columns) == list(sample.columns) and submission.shape == sample.shape
    assert submission["image_name"].tolist() == sample["image_name"].tolist()
    assert all(set(t.split()) <= set(vocab) for t in submission["tags"]) and len(vocab) == 6
    test_f2 = float(stdout.split("f2_samples:")[-1].split()[0])  # 07_score.py --auto on solution.csv
    assert test_f2 > every_label + 0.1
    report = (root / "models" / data.name / "report.md").read_text()
    assert "## Labels (OOF of the final method)" in report
    assert "## Multi-label" in (root / "models" / data.name / "eda" / "report.md").read_text()
    for folder in ("baseline", "baseline_tuned", "ensemble"):  # multi-label error analysis everywhere
        errors = root / "models" / data.name / folder / "errors"
        assert json.loads((errors / "summary.json").read_text())["task"] == "multi_label"
        assert len(pd.read_csv(errors / "per_class.csv")) == len(vocab)
        assert (errors / "top_losses.png").is_file() and (errors / "reliability.png").is_file()
        assert folder == "ensemble" or (errors / "cam.png").is_file()


@pytest.mark.slow
def test_column_layout_grouped_by_patient_scored_by_auc(tmp_path: Path) -> None:
    data = make_multilabel_dataset(tmp_path / "ranzcr", layout="columns", n_train=96, n_test=24, groups=True)
    root = tmp_path / "project"
    summary, stdout = _run(data, root, "metric=roc_auc", "data.group_column=PatientID")
    assert summary["honest_oof_score"] > 0.85  # a constant (prior) prediction scores 0.5
    folds = pd.read_csv(root / "models" / data.name / "folds.csv")
    assert (folds.groupby("group")["fold"].nunique() == 1).all()
    submission, sample = _submission(root, data)
    assert list(submission.columns) == list(sample.columns) and submission.shape == sample.shape
    assert submission["StudyInstanceUID"].tolist() == sample["StudyInstanceUID"].tolist()
    probs = submission.iloc[:, 1:].to_numpy(dtype=float)
    assert ((probs >= 0) & (probs <= 1)).all() and not np.isnan(probs).any()
    assert float(stdout.split("roc_auc:")[-1].split()[0]) > 0.85
