"""Rows a fold trains on beyond its own: data.extra_train and a student's targets, training only."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from imgclf.errors import UserError
from imgclf.training.cv import run_cv
from imgclf.training.dataset import MixedBatches, make_loader, train_batches
from imgclf.training.fold import build_fold_run
from imgclf.training.student import ExtraRows, StudentFold, combine
from tests.data.test_extra import write_extra_folders
from tests.helpers.trainkit import competition

pytestmark = pytest.mark.usefixtures("one_thread")


def test_extra_train_is_in_training_only_never_in_folds_oof_or_fingerprint(tmp_path):
    extra_dir = write_extra_folders(tmp_path / "extra", classes=("cat", "dog", "fox"), per_class=4)
    cfg, paths, comp, folds = competition(tmp_path, f"data.extra_train={extra_dir}", "train.epochs=1")
    run = build_fold_run(cfg, paths, comp, folds, 0, paths.fold_dir(0))
    n_train, n_valid = int((folds != 0).sum()), int((folds == 0).sum())
    assert len(run.train_ds) == n_train + 12 and len(run.valid_ds) == n_valid
    assert not {p for p in run.valid_ds.paths} & {str(p) for p in extra_dir.glob("*/*.png")}
    run_cv(cfg, paths)
    extra_stems = {p.stem for p in extra_dir.glob("*/*.png")}
    folds_csv = pd.read_csv(paths.folds_csv, dtype=str)
    oof = pd.read_csv(paths.oof_csv(), dtype={"id": str})
    assert sorted(folds_csv[comp.id_column]) == sorted(comp.train["id"]) == sorted(oof["id"])
    assert not extra_stems & set(folds_csv[comp.id_column]) and not extra_stems & set(oof["id"])
    assert not any(stem in paths.data_fingerprint_json.read_text() for stem in extra_stems)
    recorded = json.loads(paths.extra_train_json().read_text())
    assert recorded["dir"] == str(extra_dir) and len(recorded["fingerprint"]) == 16

    cv2.imwrite(str(sorted(extra_dir.glob("cat/*.png"))[0]), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="extra training set changed"):
        run_cv(cfg, paths)


def test_student_rows_join_training_with_widened_targets_and_only_for_their_fold(tmp_path):
    cfg, paths, comp, folds = competition(tmp_path, "train.epochs=1")
    test_files = comp.test["path"].to_numpy()
    soft = np.full((len(test_files), 3), 1 / 3, dtype=np.float32)
    student = StudentFold(fold=1, extra=ExtraRows(test_files, soft))
    run = build_fold_run(cfg, paths, comp, folds, 1, paths.fold_dir(1), student)
    labels = run.train_ds.labels
    assert labels.shape == (int((folds != 1).sum()) + len(test_files), 3)
    assert np.array_equal(labels[:-len(test_files)].argmax(1), comp.labels[folds != 1])
    assert run.hooks.mix is None and run.valid_ds.labels.ndim == 1
    with pytest.raises(ValueError, match="fold 0 was handed the targets of fold 1"):
        build_fold_run(cfg, paths, comp, folds, 0, paths.fold_dir(0), student)


def test_combine_widens_class_indices_to_the_distillation_width():
    hard = ExtraRows(np.array(["a", "b"]), np.array([0, 2]))
    wide = ExtraRows(np.array(["c"]), np.array([[0, 0, 0, 0.2, 0.3, 0.5]], dtype=np.float32))
    rows = combine([hard, wide], 3)
    expected = [[1, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 1], [0, 0, 0, 0.2, 0.3, 0.5]]
    assert np.allclose(rows.targets, expected)
    assert rows.images is None and list(rows.files) == ["a", "b", "c"]


def test_mixed_batches_pass_over_the_labelled_rows_once_with_pseudo_rows_drawn_without_replacement():
    labelled = [5, 3, 9, 1, 7, 0, 2, 8]  # an epoch's order of the labelled rows
    pseudo = np.arange(10, 15)
    batches = list(MixedBatches(labelled, pseudo, batch=3, per_batch=2, seed=4))
    assert len(batches) == len(MixedBatches(labelled, pseudo, 3, 2, 4)) == train_batches(8, 3) == 2
    assert [b[:3] for b in batches] == [[5, 3, 9], [1, 7, 0]]  # the order given; the partial batch dropped
    drawn = [row for b in batches for row in b[3:]]
    assert len(drawn) == 4 and len(set(drawn)) == 4 and set(drawn) <= set(pseudo)
    six = [row for b in MixedBatches(list(range(18)), pseudo, 3, 2, 4) for row in b[3:]]
    assert sorted(six[:5]) == list(pseudo) and len(six) == 12  # all of them before any comes twice
    assert six != [row for b in MixedBatches(list(range(18)), pseudo, 3, 2, 5) for row in b[3:]]


def test_a_mixed_student_epoch_is_the_teachers_batches_each_carrying_pseudo_rows(tmp_path):
    cfg, paths, comp, folds = competition(tmp_path, "train.epochs=1", "train.batch_size=8",
                                          "pseudo.schedule=mixed", "pseudo.batch_ratio=0.5")
    test_files = comp.test["path"].to_numpy()
    student = StudentFold(fold=0, extra=ExtraRows(test_files, np.zeros(len(test_files), dtype=np.int64)))
    run = build_fold_run(cfg, paths, comp, folds, 0, paths.fold_dir(0), student)
    n_labelled = int((folds != 0).sum())
    assert run.train_ds.pseudo_from == n_labelled and len(run.train_ds) == n_labelled + len(test_files)
    loader = make_loader(run.train_ds, cfg, run.rt.device, train=True, seed=1)
    batches = [rows.tolist() for _, _, rows in loader]
    assert len(batches) == train_batches(n_labelled, 8)
    assert all(len(b) == 12 for b in batches)  # 8 labelled rows, then 0.5 x 8 test images
    assert all(max(b[:8]) < n_labelled <= min(b[8:]) for b in batches)
    assert len({row for b in batches for row in b[:8]}) == 8 * len(batches)  # each labelled row once at most
    plain = cfg.updated({"pseudo.schedule": "steps"})
    every_row = make_loader(run.train_ds, plain, run.rt.device, train=True)
    assert len(every_row) == train_batches(len(run.train_ds), 8)
