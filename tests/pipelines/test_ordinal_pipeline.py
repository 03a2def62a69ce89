"""End to end on an APTOS-like ordinal folder (``metric=qwk``: regression head + cut-points, against a
plain 5-class classifier on the same folds) and a PetFinder-like regression folder (``metric=rmse``,
against predicting the mean)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.metrics import get_metric
from tests.helpers.ordinal import make_ordinal_dataset
from tests.helpers.runs import FAST, REPO, TINY_TUNE, one_thread_env, run_all

OVERRIDES = [*FAST, *TINY_TUNE, "train.batch_size=16", "train.epochs=4", "train.lr=0.003"]


def _run(data: Path, root: Path, *overrides: str) -> tuple[dict, str, str]:
    result = run_all(data, root, *OVERRIDES, *overrides)
    assert result.returncode == 0, f"run_all.sh failed:\n{result.stderr[-3000:]}"
    summary = json.loads((root / "models" / data.name / "ensemble" / "ensemble.json").read_text())
    return summary, result.stdout, result.stderr


def _plain_classifier_qwk(data: Path, root: Path) -> float:
    """OOF QWK of the argmax of a 5-class softmax model trained like the ordinal one."""
    for script in ("02_folds.py", "03_train.py"):
        cmd = [str(REPO / ".venv/bin/python"), str(REPO / "pipelines" / script), "--data", str(data)]
        for override in (*OVERRIDES, "task=single_label", f"paths.root={root}"):
            cmd += ["--set", override]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=one_thread_env(),
                              timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
    oof = pd.read_csv(root / "models" / data.name / "baseline" / "oof.csv", dtype={"id_code": str})
    truth = pd.read_csv(data / "train.csv").set_index("id_code")["diagnosis"]
    grades = oof[[str(k) for k in range(5)]].to_numpy().argmax(axis=1)
    return get_metric("qwk", "ordinal")(truth.loc[oof["id"].astype(str)].to_numpy(), grades)


@pytest.mark.slow
def test_ordinal_grades_scored_by_qwk(tmp_path: Path) -> None:
    data = make_ordinal_dataset(tmp_path / "aptos", n_train=200, n_test=50)
    summary, stdout, stderr = _run(data, tmp_path / "project", "metric=qwk")
    assert "task auto -> ordinal: metric qwk" in stderr and summary["task"] == "ordinal"
    cut = summary["cutpoints"]
    assert summary["honest_oof_score"] == max(cut["rounded_oof_score"], cut["cross_fitted_oof_score"])
    plain = _plain_classifier_qwk(data, tmp_path / "plain")
    print(f"OOF qwk: regression + cut-points {summary['honest_oof_score']:.4f}, plain 5-class {plain:.4f}")
    assert summary["honest_oof_score"] >= plain and summary["honest_oof_score"] > 0.6
    submission = pd.read_csv(tmp_path / "project" / "submissions" / "aptos" / "submission.csv")
    sample = pd.read_csv(data / "sample_submission.csv")
    assert list(submission.columns) == list(sample.columns) and submission.shape == sample.shape
    assert pd.api.types.is_integer_dtype(submission["diagnosis"])
    assert set(submission["diagnosis"]) <= set(range(5))
    test_qwk = float(stdout.split("qwk:")[-1].split()[0])  # 07_score.py --auto on solution.csv
    assert test_qwk > 0.5
    report = (tmp_path / "project" / "models" / "aptos" / "report.md").read_text()
    assert "## Ordinal predictions" in report and "Cut-points" in report
    assert (tmp_path / "project" / "models" / "aptos" / "eda" / "target_histogram.png").is_file()


@pytest.mark.slow
def test_regression_target_scored_by_rmse(tmp_path: Path) -> None:
    data = make_ordinal_dataset(tmp_path / "paw", n_train=200, n_test=50, task="regression")
    summary, stdout, stderr = _run(data, tmp_path / "project", "metric=rmse")
    assert "task auto -> regression" in stderr and summary["task"] == "regression"
    train = pd.read_csv(data / "train.csv")["Pawpularity"].to_numpy()
    mean_rmse = float(train.std())  # predicting the train mean, on the OOF rows
    assert summary["honest_oof_score"] < 0.95 * mean_rmse, (summary["honest_oof_score"], mean_rmse)
    solution = pd.read_csv(data / "solution.csv")["Pawpularity"].to_numpy()
    test_rmse = float(stdout.split("rmse:")[-1].split()[0])
    mean_test_rmse = float(np.sqrt(np.mean((solution - train.mean()) ** 2)))
    print(f"rmse: OOF {summary['honest_oof_score']:.3f} (train mean {mean_rmse:.3f}), "
          f"test {test_rmse:.3f} (train mean {mean_test_rmse:.3f})")
    assert test_rmse < mean_test_rmse
    submission = pd.read_csv(tmp_path / "project" / "submissions" / "paw" / "submission.csv")
    assert submission["Pawpularity"].between(train.min(), train.max()).all()
    assert (tmp_path / "project" / "models" / "paw" / "ensemble" / "predicted_vs_true.png").is_file()
