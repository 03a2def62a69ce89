"""Submission building, validation, versioning; the ensemble and scoring scripts on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.data.competition import Competition
from imgclf.ensemble.submission import build_submission, validate_submission, write_submissions
from imgclf.errors import DataError
from imgclf.paths import Paths


def competition(tmp_path: Path, kind: str, class_values: list, sample: pd.DataFrame | None,
                test_ids: list[str]) -> Competition:
    """A Competition as ingest builds it (the submission code needs no images)."""
    id_column = sample.columns[0] if sample is not None else "id"
    targets = list(sample.columns[1:]) if sample is not None else ["label"]
    return Competition(
        name="comp", data_dir=tmp_path, layout="csv", train=pd.DataFrame({"id": [], "path": [], "label": []}),
        test=pd.DataFrame({"id": test_ids, "path": [tmp_path / f"{i}.png" for i in test_ids]}),
        class_values=class_values, id_column=id_column, target_columns=targets, submission_kind=kind,
        train_targets=pd.DataFrame({id_column: []}), sample_submission=sample)


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
