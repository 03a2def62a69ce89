"""The stage functions turn a script's own options into library calls (the heavy paths run in
tests/pipelines); here the option handling they add themselves."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from imgclf.errors import UserError
from imgclf.paths import Paths
from imgclf.stages import score_stage, train_stage


def _score_args(**given: object) -> argparse.Namespace:
    defaults = {"submission": None, "solution": None, "metric": None, "auto": False}
    return argparse.Namespace(**{**defaults, **given})


def test_score_auto_without_a_solution_scores_nothing(kaggle_dir: Path, fast_cfg, capsys) -> None:
    cfg = fast_cfg(kaggle_dir)
    (kaggle_dir / "solution.csv").unlink()
    score_stage(_score_args(auto=True), cfg, Paths.from_config(cfg))
    assert "no solution.csv in" in capsys.readouterr().out


def test_score_needs_both_files_and_uses_the_given_metric(kaggle_dir: Path, fast_cfg, tmp_path: Path,
                                                           capsys) -> None:
    cfg = fast_cfg(kaggle_dir)
    with pytest.raises(UserError, match="needs SUBMISSION and SOLUTION"):
        score_stage(_score_args(submission=kaggle_dir / "solution.csv"), cfg, Paths.from_config(cfg))
    solution = pd.read_csv(kaggle_dir / "solution.csv")
    submission = tmp_path / "sub.csv"
    solution.assign(label=[solution["label"].iloc[0]] * len(solution)).to_csv(submission, index=False)
    score_stage(_score_args(submission=submission, solution=kaggle_dir / "solution.csv", metric="f1_macro"),
                cfg, Paths.from_config(cfg))
    out = capsys.readouterr().out
    assert out.startswith("f1_macro: ") and float(out.split()[1]) < 0.5  # one label for every image


def test_train_tuned_without_a_study_trains_nothing(kaggle_dir: Path, fast_cfg) -> None:
    cfg = fast_cfg(kaggle_dir)
    paths = Paths.from_config(cfg)
    train_stage(argparse.Namespace(tuned=True, folds=None, overrides=[]), cfg, paths)
    assert not paths.experiment_dir("baseline_tuned").exists()
