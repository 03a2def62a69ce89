"""The pseudo-label stage on a tiny competition: fold k's student learns only from teacher fold k,
its targets' checkpoints are recorded, a retrained teacher is noticed, a killed stage resumes."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from imgclf.atomic import write_text
from imgclf.errors import UserError
from imgclf.pseudo.run import is_student, run_pseudo, teachers_of
from imgclf.pseudo.teacher import fold_logits
from imgclf.training.checkpoint import evaluated_weights, load_checkpoint, load_model_for_inference
from imgclf.training.cv import run_cv
from imgclf.training.dataset import ImageDataset, make_loader, train_batches
from imgclf.training.engine import make_runtime, predict_logits
from tests.helpers.trainkit import competition

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def taught(tmp_path):
    """A baseline teacher (2 folds, 1 epoch) on a tiny competition."""
    cfg, paths, comp, folds = competition(tmp_path, "train.epochs=1", n_train=36)
    run_cv(cfg, paths)
    return cfg, paths, comp, folds


def _used(paths, fold: int, cfg, experiment: str = "baseline"):
    """The checkpoint whose weights the experiment predicts with (train.checkpoint: last.pt by default)."""
    return paths.model_ckpt(fold, experiment, cfg.train.checkpoint)


def _direct_test_logits(cfg, paths, comp, fold: int) -> np.ndarray:
    """Fold ``fold``'s teacher checkpoint applied to the test images, computed here independently."""
    model, state = load_model_for_inference(_used(paths, fold, cfg), comp, torch.device("cpu"))
    rt = make_runtime(cfg, torch.device("cpu"), tuple(state["mean"].tolist()), tuple(state["std"].tolist()))
    ds = ImageDataset(comp.test["path"].to_numpy(), None, cfg.data.image_size)
    logits, rows = predict_logits(model, make_loader(ds, cfg, torch.device("cpu"), train=False), rt)
    out = np.empty_like(logits)
    out[rows] = logits
    return out


def test_each_student_fold_learns_only_from_its_own_folds_teacher(taught):
    cfg, paths, comp, folds = taught
    soft = {"pseudo.enabled": True, "pseudo.mode": "soft", "pseudo.top_fraction": None}
    result = run_pseudo(cfg.updated(soft), paths)
    student = result["student"]
    assert student == "baseline_soft" and result["teachers"] == ["baseline"]
    selection = json.loads(paths.teacher_json(0, student).read_text())["selection"]
    assert selection["selected"] == selection["of"] == len(comp.test)  # soft, no selection: every test image
    direct = [_direct_test_logits(cfg, paths, comp, k) for k in (0, 1)]
    assert not np.allclose(direct[0], direct[1], atol=1e-3)  # the two teacher folds are distinguishable
    for k in (0, 1):
        with np.load(paths.teacher_targets_npz(k, student)) as npz:
            used = npz["test"]
        assert np.allclose(used, direct[k], atol=1e-4), f"student fold {k} got another fold's targets"
        assert not np.allclose(used, direct[1 - k], atol=1e-3)
        record = json.loads(paths.teacher_json(k, student).read_text())["checkpoints"]
        assert [(r["experiment"], r["fold"], r["path"]) for r in record] == [
            ("baseline", k, str(_used(paths, k, cfg)))]
        assert len(record[0]["sha256"]) == 64
    oof = pd.read_csv(paths.oof_csv(student), dtype={"id": str})
    assert sorted(oof["id"]) == sorted(comp.train["id"])  # test images train the student, never score it
    assert paths.test_csv(student).is_file() and set(result["scores"]) == {"baseline", student}
    assert teachers_of(cfg, paths, 2) == ["baseline"]  # a student never teaches the next round by default


def test_fold_logits_are_the_folds_own_checkpoint(taught):
    cfg, paths, comp, folds = taught
    for k in (0, 1):
        logits = fold_logits(cfg, paths, comp, folds, ["baseline"], k, with_train=True)
        assert np.allclose(logits.test, _direct_test_logits(cfg, paths, comp, k), atol=1e-4)
        assert logits.train.shape == (int((folds != k).sum()), 3) and logits.record[0]["fold"] == k


def test_a_retrained_teacher_is_noticed_and_a_killed_stage_resumes(taught):
    cfg, paths, comp, folds = taught
    pcfg = cfg.updated({"pseudo.enabled": True, "pseudo.mode": "hard", "pseudo.student": "st"})
    run_pseudo(pcfg, paths)
    kept = paths.best_ckpt(0, "st").stat().st_mtime_ns
    for name in ("oof.csv", "best.pt", "last.pt"):  # fold 1 killed before it finished
        paths.fold_dir(1, "st").joinpath(name).unlink()
    run_pseudo(pcfg, paths)
    assert paths.best_ckpt(0, "st").stat().st_mtime_ns == kept and paths.fold_oof(1, "st").is_file()

    teacher = _used(paths, 1, cfg)  # the teacher's fold 1 retrained after the student was made
    state = torch.load(teacher, weights_only=False)
    state["epoch"] = 2
    torch.save(state, teacher)
    marked = paths.pseudo_json("st").read_text()
    with pytest.raises(UserError, match="fold 1 were made by teacher checkpoints that changed.*stale"):
        run_pseudo(pcfg.updated({"pseudo.temperature": 3.0}), paths)
    assert paths.pseudo_json("st").read_text() == marked  # a refused run leaves the student as it was


def test_a_refused_run_does_not_mark_a_folder_as_a_student(taught):
    cfg, paths, comp, folds = taught
    made_by = {"experiment": "baseline", "fold": 0, "path": str(_used(paths, 0, cfg)),
               "mtime_ns": 0, "sha256": "0" * 64}  # a checkpoint that is not the teacher's current one
    record = {"fold": 0, "checkpoints": [made_by]}
    write_text(paths.teacher_json(0, "st"), json.dumps(record))
    with pytest.raises(UserError, match="fold 0 were made by teacher checkpoints that changed"):
        run_pseudo(cfg.updated({"pseudo.enabled": True, "pseudo.student": "st"}), paths)
    assert not paths.pseudo_json("st").exists() and not is_student(paths, "st")


def test_a_students_plan_counts_the_test_images_it_trains_on_and_keeps_the_teachers_steps(tmp_path, caplog):
    cfg, paths, comp, folds = competition(tmp_path, "train.epochs=3", "train.batch_size=4", n_train=36)
    run_cv(cfg, paths)
    teacher_plan = json.loads(paths.plan_json().read_text())["plan"]
    soft = {"pseudo.enabled": True, "pseudo.mode": "soft", "pseudo.threshold": 0.05,  # top_fraction 0.5 too
            "pseudo.schedule": "steps"}
    with caplog.at_level(logging.INFO, logger="imgclf"):
        student = run_pseudo(cfg.updated(soft), paths)["student"]
    assert "pseudo.threshold=0.05 selects the test images; pseudo.top_fraction (0.5) is ignored" \
        in caplog.text
    plan = json.loads(paths.plan_json(student).read_text())["plan"]
    for k in (0, 1):
        selected = json.loads(paths.teacher_json(k, student).read_text())["selection"]["selected"]
        assert selected == len(comp.test)  # every confidence is above 1/3: the threshold, not the top half
        assert plan["steps_per_epoch"] == train_batches(int((folds != k).sum()) + selected, 4) == 6
    assert teacher_plan["steps_per_epoch"] == train_batches(int((folds != 0).sum()), 4) == 4
    # pseudo.schedule=steps: the teacher's 3 epochs x 4 steps = 12 steps, as 2 epochs of 6
    assert (teacher_plan["epochs"], teacher_plan["steps_per_fold"]) == (3, 12)
    assert (plan["epochs"], plan["steps_per_fold"]) == (2, 12)
    assert plan["fold_seconds"] == pytest.approx(teacher_plan["fold_seconds"], rel=0.01)
    assert "6 steps per epoch" in caplog.text
    assert len(pd.read_csv(paths.history_csv(0, student))) == 2
    # pseudo.schedule=epochs: the teacher's 3 epochs, 18 steps a fold
    by_epochs = cfg.updated({**soft, "pseudo.schedule": "epochs", "pseudo.student": "by_epochs"})
    run_pseudo(by_epochs, paths)
    assert json.loads(paths.plan_json("by_epochs").read_text())["plan"]["steps_per_fold"] == 18
    # pseudo.schedule=mixed: the teacher's 3 epochs of 4 batches, each also carrying 4 test images
    mixed = cfg.updated({**soft, "pseudo.schedule": "mixed", "pseudo.student": "mixed"})
    run_pseudo(mixed, paths)
    plan = json.loads(paths.plan_json("mixed").read_text())["plan"]
    assert (plan["epochs"], plan["steps_per_epoch"], plan["steps_per_fold"]) == (3, 4, 12)
    assert plan["fold_seconds"] == pytest.approx(2 * teacher_plan["fold_seconds"], rel=0.01)
    history = pd.read_csv(paths.history_csv(0, "mixed"))
    assert len(history) == 3


def test_a_second_round_student_starts_from_its_own_folds_teacher(taught):
    cfg, paths, comp, folds = taught
    # a vanishing learning rate: the student's weights stay where they started
    frozen = {"train.lr": 1e-12, "train.scheduler": "none", "train.epochs": 1}
    pcfg = cfg.updated({"pseudo.enabled": True, "pseudo.init": "teacher", "pseudo.overrides": frozen})
    student = run_pseudo(pcfg, paths)["student"]
    weights = {k: evaluated_weights(load_checkpoint(_used(paths, k, cfg))) for k in (0, 1)}
    for k in (0, 1):
        started = evaluated_weights(load_checkpoint(_used(paths, k, cfg, student)))
        params = [name for name, v in started.items() if v.is_floating_point() and "running" not in name]
        assert all(torch.allclose(started[n], weights[k][n], atol=1e-6) for n in params)
        assert not all(torch.allclose(started[n], weights[1 - k][n], atol=1e-3) for n in params)
    other = {"pseudo.student": "other", "pseudo.overrides": {"model.name": "mobilenetv3_small_050"}}
    with pytest.raises(UserError, match=r"pseudo.init: teacher needs the student's model.name"):
        run_pseudo(pcfg.updated(other), paths)


def test_distillation_student_of_a_smaller_model_on_train_and_test(taught):
    cfg, paths, comp, folds = taught
    pcfg = cfg.updated({"pseudo.enabled": True, "pseudo.mode": "distill", "pseudo.temperature": 2.0,
                        "pseudo.overrides": {"model.name": "mobilenetv3_small_050"}})
    result = run_pseudo(pcfg, paths)
    student = result["student"]
    assert "mobilenetv3_small_050" in paths.config_yaml(student).read_text()
    with np.load(paths.teacher_targets_npz(0, student)) as npz:
        assert npz["train"].shape == (int((folds != 0).sum()), 3) and npz["test"].shape == (len(comp.test), 3)
    assert result["scores"][student]["oof"] is not None
