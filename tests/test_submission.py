"""Submission building, validation, versioning; the ensemble and scoring scripts on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_kaggle_dataset, paths_of, run_script

from imgclf.config import dump_yaml
from imgclf.data import Competition, load_competition
from imgclf.errors import DataError
from imgclf.folds import make_folds
from imgclf.paths import Paths
from imgclf.scoring import score_submission
from imgclf.submission import build_submission, validate_submission, write_submissions


def competition(tmp_path: Path, kind: str, class_values: list, sample: pd.DataFrame | None,
                test_ids: list[str]) -> Competition:
    """A Competition as ingest builds it (the submission code needs no images)."""
    id_column = sample.columns[0] if sample is not None else "id"
    targets = list(sample.columns[1:]) if sample is not None else ["label"]
    return Competition(
        name="comp", data_dir=tmp_path, layout="csv", train=pd.DataFrame({"id": [], "path": [], "label": []}),
        test=pd.DataFrame({"id": test_ids, "path": [tmp_path / f"{i}.png" for i in test_ids]}),
        class_values=class_values, id_column=id_column, target_columns=targets, submission_kind=kind,
        sample_submission=sample)


IDS = ["b7", "a1", "c3"]  # not sorted: the submission keeps sample_submission's order
PROBS = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])


def test_label_kind_keeps_integer_labels_and_sample_order(tmp_path):
    sample = pd.DataFrame({"image": IDS, "target": "0"})
    comp = competition(tmp_path, "label", [0, 3, 7], sample, test_ids=["c3", "b7", "a1"])
    sub = build_submission(comp, PROBS)  # PROBS rows follow comp.test: c3, b7, a1
    assert list(sub.columns) == ["image", "target"] and sub["image"].tolist() == IDS
    assert sub["target"].tolist() == [0, 7, 3] and pd.api.types.is_integer_dtype(sub["target"])
    validate_submission(sub, comp)
    assert sub.to_csv(index=False).splitlines()[1] == "b7,0"


def test_mask_layout_label_path(tmp_path):
    sample = pd.DataFrame({"ImageID": ["x.jpg", "y.jpg"], "ans": "0"})
    comp = competition(tmp_path, "label", list(range(18)), sample, test_ids=["x.jpg", "y.jpg"])
    probs = np.eye(18)[[17, 4]]
    sub = build_submission(comp, probs)
    assert list(sub.columns) == ["ImageID", "ans"] and sub["ans"].tolist() == [17, 4]
    validate_submission(sub, comp)


def test_string_labels_and_imagefolder_layout(tmp_path):
    comp = competition(tmp_path, "label", ["cat", "dog", "fox"], None, test_ids=IDS)
    sub = build_submission(comp, PROBS)
    assert list(sub.columns) == ["id", "label"] and sub["label"].tolist() == ["dog", "cat", "fox"]
    validate_submission(sub, comp)


def test_proba_kind_follows_sample_column_order(tmp_path):
    sample = pd.DataFrame({"id": IDS, "fox": "0.3", "cat": "0.3", "dog": "0.4"})
    comp = competition(tmp_path, "proba", ["cat", "dog", "fox"], sample, test_ids=IDS)
    sub = build_submission(comp, PROBS)
    assert list(sub.columns) == ["id", "fox", "cat", "dog"]
    np.testing.assert_allclose(sub[["cat", "dog", "fox"]].to_numpy(), PROBS)
    validate_submission(sub, comp)
    skewed = sub.assign(fox=sub["fox"] + 0.2)
    with pytest.raises(DataError, match="sum to 1.2000"):
        validate_submission(skewed, comp)


def test_binary_proba_kind_is_the_second_class(tmp_path):
    sample = pd.DataFrame({"id": IDS, "target": "0.5"})
    comp = competition(tmp_path, "binary_proba", [0, 1], sample, test_ids=IDS)
    sub = build_submission(comp, np.array([[0.9, 0.1], [0.25, 0.75], [0.5, 0.5]]))
    assert list(sub.columns) == ["id", "target"] and sub["target"].tolist() == [0.1, 0.75, 0.5]
    validate_submission(sub, comp)
    with pytest.raises(DataError, match="outside"):
        validate_submission(sub.assign(target=[0.1, 1.5, 0.5]), comp)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.iloc[1:], "missing id 'b7'"),
    (lambda s: s.assign(extra=1), "extra ['extra']"),
    (lambda s: s.assign(target=[3, None, 7]), "NaN in column 'target' at id 'a1'"),
    (lambda s: s.iloc[[1, 0, 2]], "order"),
    (lambda s: s.assign(target=[3, 5, 7]), "label 5"),
    (lambda s: s.assign(target=[3.0, 0.0, 7.0]), "integer labels"),
])
def test_bad_submission_is_refused_and_nothing_written(tmp_path, edit, message):
    sample = pd.DataFrame({"image": IDS, "target": "0"})
    comp = competition(tmp_path, "label", [0, 3, 7], sample, test_ids=IDS)
    good = build_submission(comp, PROBS)
    paths = Paths(root=tmp_path, data_dir=tmp_path / "comp", experiment="baseline")
    with pytest.raises(DataError, match="final submission") as err:
        write_submissions(paths, comp, edit(good), {"ensemble_soft": good})
    assert message in str(err.value)
    with pytest.raises(DataError, match="alternative submission 'model_x'"):
        write_submissions(paths, comp, good, {"model_x": edit(good)})
    assert not paths.submissions_dir.exists()


def test_versions_are_kept_and_not_duplicated(tmp_path):
    sample = pd.DataFrame({"image": IDS, "target": "0"})
    comp = competition(tmp_path, "label", [0, 3, 7], sample, test_ids=IDS)
    paths = Paths(root=tmp_path, data_dir=tmp_path / "comp", experiment="baseline")
    first, second = build_submission(comp, PROBS), build_submission(comp, PROBS[::-1])
    write_submissions(paths, comp, first, {"ensemble_soft": first})
    write_submissions(paths, comp, first, {})  # identical content: no new version
    assert sorted(p.name for p in paths.submissions_dir.glob("submission*.csv")) == [
        "submission.csv", "submission_v001.csv"]
    written = write_submissions(paths, comp, second, {})
    assert written["version"].endswith("submission_v002.csv")
    assert paths.submission_version_csv(1).read_text() == first.to_csv(index=False)  # never overwritten
    assert paths.submission_csv.read_text() == paths.submission_version_csv(2).read_text()
    assert (paths.alternatives_dir / "ensemble_soft.csv").is_file()
    assert not list(paths.submissions_dir.glob(".tmp-*"))


def fake_experiment(paths: Paths, cfg, comp: Competition, folds: np.ndarray, seed: int) -> None:
    """Prediction files as 03_train and 05_infer write them, from noisy but informative probabilities."""
    rng = np.random.default_rng(seed)
    paths.experiment_dir().mkdir(parents=True, exist_ok=True)
    paths.config_yaml().write_text(dump_yaml(cfg))

    def probs(labels: np.ndarray) -> np.ndarray:
        return 0.6 * np.eye(comp.num_classes)[labels] + 0.4 * rng.dirichlet(np.ones(comp.num_classes), len(labels))

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
    assert list(sub.columns) == list(sample.columns) and sub["image_id"].tolist() == sample["image_id"].tolist()
    assert set(sub["label"]) <= {"cat", "dog", "fox"}
    assert {p.name for p in paths.alternatives_dir.iterdir()} >= {"ensemble_hard.csv", "ensemble_soft.csv",
                                                                  "ensemble_weighted.csv", "model_baseline.csv"}
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


def test_score_label_proba_and_binary_submissions(tmp_path):
    solution = tmp_path / "solution.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "label": ["cat", "dog", "dog", "fox"]}).to_csv(solution, index=False)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["d", "c", "b", "a"], "label": ["fox", "cat", "dog", "cat"]}).to_csv(labels, index=False)
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
    assert result.returncode == 2 and result.stderr.strip().startswith("error:") and "missing.csv" in result.stderr
