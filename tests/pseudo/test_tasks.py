"""Pseudo-labels beyond single-label classes: for ordinal grades and regression targets every test
image gets the number its own fold's teacher decodes it to (a whole grade under ``hard``); modes a
task cannot learn from are refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imgclf.config.loading import load_config
from imgclf.data.folds import make_folds
from imgclf.data.ingest import load_competition
from imgclf.errors import ConfigError
from imgclf.models.ordinal import decode, head_of, target_scale
from imgclf.paths import Paths
from imgclf.pseudo.run import is_student, run_pseudo
from imgclf.pseudo.teacher import fold_logits
from imgclf.training.cv import run_cv
from tests.helpers.multilabel import make_multilabel_dataset
from tests.helpers.ordinal import make_ordinal_dataset
from tests.helpers.runs import FAST

pytestmark = pytest.mark.usefixtures("one_thread")


def _taught(tmp_path, task: str, metric: str, *overrides: str):
    if task == "multi_label":
        data = make_multilabel_dataset(tmp_path / task, n_train=40, n_test=12)
    else:
        data = make_ordinal_dataset(tmp_path / task, n_train=40, n_test=12, task=task, side=16)
    cfg = load_config(None, [*FAST, "train.epochs=1", "train.batch_size=8", "data.image_size=16",
                             f"metric={metric}", f"paths.root={tmp_path / 'project'}", f"data.dir={data}",
                             *overrides])
    paths = Paths.from_config(cfg)
    comp = load_competition(cfg, paths)
    folds = make_folds(cfg, paths, comp)["fold"].to_numpy()
    run_cv(cfg, paths)
    return cfg, paths, comp, folds


def test_ordinal_students_learn_each_folds_own_teachers_whole_grades(tmp_path):
    cfg, paths, comp, folds = _taught(tmp_path, "ordinal", "qwk")
    assert comp.continuous and head_of(cfg, comp) == "regression"
    student = run_pseudo(cfg.updated({"pseudo.enabled": True}), paths)["student"]
    for k in (0, 1):
        with np.load(paths.teacher_targets_npz(k, student)) as npz:
            saved = npz["test"]
        own = fold_logits(cfg, paths, comp, folds, ["baseline"], k, False).test
        assert np.allclose(saved, own, atol=1e-5)  # fold k's own teacher, nothing averaged over folds
        grades = np.clip(np.rint(decode(own, "regression", *target_scale(comp))), 0, 4)
        record = json.loads(paths.teacher_json(k, student).read_text())
        assert record["selection"]["selected"] == len(comp.test)
        assert record["selection"]["mean_target"] == pytest.approx(grades.mean())
    other = fold_logits(cfg, paths, comp, folds, ["baseline"], 1, False).test
    with np.load(paths.teacher_targets_npz(0, student)) as npz:
        assert not np.allclose(npz["test"], other)  # the two folds' teachers differ: the check above can fail
    oof = pd.read_csv(paths.oof_csv(student), dtype={"id": str})
    assert sorted(oof["id"]) == sorted(comp.train["id"])  # no test image among the OOF rows
    assert json.loads(paths.cv_json(student).read_text())["pooled"]["qwk"] is not None


def test_regression_students_take_the_number_and_distillation_is_refused(tmp_path):
    cfg, paths, comp, _ = _taught(tmp_path, "regression", "rmse")
    student = run_pseudo(cfg.updated({"pseudo.enabled": True, "pseudo.mode": "soft"}), paths)["student"]
    mean = json.loads(paths.teacher_json(0, student).read_text())["selection"]["mean_target"]
    assert 0 < mean < 100 and mean != round(mean)  # Pawpularity units, not a class index
    distill = {"pseudo.enabled": True, "pseudo.mode": "distill", "pseudo.student": "d"}
    with pytest.raises(ConfigError, match="distill matches class probabilities"):
        run_pseudo(cfg.updated(distill), paths)
    assert not is_student(paths, "d")  # refused before anything was written


def test_a_soft_grade_needs_a_regression_head(tmp_path):
    cfg, paths, _, _ = _taught(tmp_path, "ordinal", "qwk", "model.ordinal_head=classification")
    with pytest.raises(ConfigError, match="the classification head learns whole grades"):
        run_pseudo(cfg.updated({"pseudo.enabled": True, "pseudo.mode": "soft"}), paths)


def test_a_multi_label_distillation_is_refused_before_anything_is_written(tmp_path):
    cfg, paths, comp, _ = _taught(tmp_path, "multi_label", "f1_samples")
    assert comp.multi_label
    with pytest.raises(ConfigError, match="distill is single-label only"):
        run_pseudo(cfg.updated({"pseudo.enabled": True, "pseudo.mode": "distill", "pseudo.student": "d"}),
                   paths)
    assert not is_student(paths, "d") and not paths.experiment_dir("d").exists()
