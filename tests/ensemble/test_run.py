"""The ensemble stage: every method scored on OOF, the validated submission written, bad predictions
refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imgclf.config.loading import dump_yaml
from imgclf.data.competition import Competition
from imgclf.data.folds import make_folds
from imgclf.data.ingest import load_competition
from imgclf.ensemble.scoring import score_submission
from imgclf.paths import Paths
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import paths_of, run_script


def fake_experiment(paths: Paths, cfg, comp: Competition, folds: np.ndarray, seed: int,
                    signal: float = 0.6) -> None:
    """Prediction files as 03_train and 05_infer write them, from noisy probabilities that lean
    ``signal`` towards the truth."""
    rng = np.random.default_rng(seed)
    paths.experiment_dir().mkdir(parents=True, exist_ok=True)
    paths.config_yaml().write_text(dump_yaml(cfg))

    def probs(labels: np.ndarray) -> np.ndarray:
        return (signal * np.eye(comp.num_classes)[labels]
                + (1 - signal) * rng.dirichlet(np.ones(comp.num_classes), len(labels)))

    oof = pd.DataFrame(probs(comp.train["label"].to_numpy()), columns=comp.classes)
    oof.insert(0, "fold", folds)
    oof.insert(0, "id", comp.train["id"])
    for k in np.unique(folds):
        paths.fold_dir(k).mkdir(exist_ok=True)
        oof[oof["fold"] == k].to_csv(paths.fold_oof(k), index=False)
    oof.to_csv(paths.oof_csv(), index=False)
    oof.to_csv(paths.oof_tta_csv(), index=False)
    solution = pd.read_csv(comp.data_dir / "solution.csv", dtype=str)
    truth = np.array([comp.classes.index(v) for v in solution["label"]])
    test = pd.DataFrame(probs(truth), columns=comp.classes)
    test.insert(0, "id", comp.test["id"])
    test.to_csv(paths.test_csv(), index=False)


def test_ensemble_script_writes_validated_submission_and_refuses_bad_predictions(tmp_path, fast_cfg):
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=24, n_test=12, side=8)
    root = tmp_path / "project"
    cfg = fast_cfg(data)
    paths = paths_of(cfg)
    comp = load_competition(cfg, paths)
    folds = make_folds(cfg, paths, comp)["fold"].to_numpy()
    fake_experiment(paths, cfg, comp, folds, seed=0)
    test_csv = paths.test_csv()
    good = pd.read_csv(test_csv, dtype={"id": str})
    args = ("--data", str(data), "--set", "folds.n_splits=2")
    for defect, frame in [("missing id", good.iloc[1:]), ("extra column", good.assign(zebra=0.0)),
                          ("NaN", good.assign(cat=np.where(good.index == 3, np.nan, good["cat"])))]:
        frame.to_csv(test_csv, index=False)
        result = run_script("pipelines/06_ensemble.py", *args, root=root)
        assert result.returncode == 2, (defect, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error:") and "test.csv" in last, (defect, last)
        assert not paths.submissions_dir.exists(), defect

    good.to_csv(test_csv, index=False)
    result = run_script("pipelines/06_ensemble.py", *args, root=root)
    assert result.returncode == 0, result.stderr
    assert "final method:" in result.stdout and "stacking" in result.stdout
    sub = pd.read_csv(paths.submission_csv, dtype=str)
    sample = pd.read_csv(data / "sample_submission.csv", dtype=str)
    assert (list(sub.columns) == list(sample.columns)
            and sub["image_id"].tolist() == sample["image_id"].tolist())
    assert set(sub["label"]) <= {"cat", "dog", "fox"}
    assert {p.name for p in paths.alternatives_dir.iterdir()} >= {"ensemble_hard.csv", "ensemble_soft.csv",
                                                                  "ensemble_weighted.csv",
                                                                  "model_baseline.csv"}
    assert pd.read_csv(paths.ensemble_scores_csv)["method"].tolist()[0] == "model:baseline"
    assert "## Ensemble (OOF)" in paths.report_md.read_text()

    score = run_script("pipelines/07_score.py", "--auto", *args, root=root)
    assert score.returncode == 0, score.stderr
    assert float(score.stdout.split("accuracy:")[1].split()[0]) == pytest.approx(
        score_submission(paths.submission_csv, data / "solution.csv", "accuracy"))

    before = paths.submission_csv.read_text()
    good.iloc[:-1].to_csv(test_csv, index=False)  # a later broken run leaves the last submission alone
    assert run_script("pipelines/06_ensemble.py", *args, root=root).returncode == 2
    assert paths.submission_csv.read_text() == before
    assert sorted(p.name for p in paths.submissions_dir.glob("*.csv")) == ["submission.csv",
                                                                            "submission_v001.csv"]


def test_a_clearly_worse_experiment_is_left_out_unless_a_method_is_asked_for(tmp_path, fast_cfg):
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=60, n_test=12, side=8)
    root, cfg = tmp_path / "project", fast_cfg(data)
    paths = paths_of(cfg)
    comp = load_competition(cfg, paths)
    folds = make_folds(cfg, paths, comp)["fold"].to_numpy()
    fake_experiment(paths, cfg, comp, folds, seed=0)
    poor = cfg.updated({"experiment": "poor"})
    fake_experiment(paths_of(poor), poor, comp, folds, seed=1, signal=0.02)  # about chance
    args = ("--data", str(data), "--set", "folds.n_splits=2")
    result = run_script("pipelines/06_ensemble.py", *args, root=root)
    assert result.returncode == 0, result.stderr
    saved = json.loads(paths.ensemble_json.read_text())
    assert (saved["experiments"], saved["left_out"]) == (["baseline"], ["poor"])
    assert "poor left out of the blends" in result.stderr
    assert "Left out of the blends (OOF clearly below the best model's): poor" in paths.report_md.read_text()
    assert (paths.alternatives_dir / "model_poor.csv").is_file()
    table = pd.read_csv(paths.ensemble_scores_csv).set_index("method")
    assert table.loc["soft", "accuracy"] == table.loc["model:baseline", "accuracy"]

    asked = run_script("pipelines/06_ensemble.py", *args, "--set", "ensemble.method=soft", root=root)
    assert asked.returncode == 0, asked.stderr
    saved = json.loads(paths.ensemble_json.read_text())
    assert (saved["experiments"], saved["left_out"]) == (["baseline", "poor"], [])
