"""The local leaderboard scores label, probability and binary submissions against a solution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imgclf.ensemble.scoring import score_submission
from imgclf.errors import DataError
from tests.helpers.runs import run_script


def test_score_label_proba_and_binary_submissions(tmp_path):
    solution = tmp_path / "solution.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"],
                  "label": ["cat", "dog", "dog", "fox"]}).to_csv(solution, index=False)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["d", "c", "b", "a"],
                  "label": ["fox", "cat", "dog", "cat"]}).to_csv(labels, index=False)
    assert score_submission(labels, solution, "accuracy") == pytest.approx(0.75)  # joined by id, not row
    proba = tmp_path / "proba.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "fox": [0.1, 0.1, 0.5, 0.8], "cat": [0.8, 0.1, 0.1, 0.1],
                  "dog": [0.1, 0.8, 0.4, 0.1]}).to_csv(proba, index=False)
    assert score_submission(proba, solution, "accuracy") == pytest.approx(0.75)
    assert score_submission(proba, solution, "log_loss") == pytest.approx(
        -np.mean(np.log([0.8, 0.8, 0.4, 0.8])), rel=1e-6)

    binary_solution = tmp_path / "binary_solution.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "target": [0, 1, 1, 0]}).to_csv(binary_solution, index=False)
    binary = tmp_path / "binary.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "target": [0.2, 0.9, 0.4, 0.3]}).to_csv(binary, index=False)
    assert score_submission(binary, binary_solution, "roc_auc") == pytest.approx(1.0)
    pd.DataFrame({"id": ["a", "b", "c", "d"], "target": [0.2, 0.9, 0.25, 0.3]}).to_csv(binary, index=False)
    assert score_submission(binary, binary_solution, "roc_auc") == pytest.approx(0.75)
    int_labels = tmp_path / "int_labels.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "target": [0.0, 1.0, 0.0, 0.0]}).to_csv(int_labels, index=False)
    assert score_submission(int_labels, binary_solution, "accuracy") == pytest.approx(0.75)  # 1.0 == 1

    missing = tmp_path / "missing.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "label": ["cat", "dog", "dog"]}).to_csv(missing, index=False)
    with pytest.raises(DataError, match="1 solution id"):
        score_submission(missing, solution, "accuracy")
    result = run_script("pipelines/07_score.py", str(missing), str(solution), "--metric", "accuracy",
                        root=tmp_path / "project")
    assert (result.returncode == 2 and result.stderr.strip().startswith("error:")
            and "missing.csv" in result.stderr)
