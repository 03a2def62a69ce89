"""Cross-validation of an experiment: listed folds only, finished folds skipped, pooled OOF scored."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imgclf.training.cv import run_cv
from tests.helpers.runs import FAST, run_script
from tests.helpers.trainkit import LEARN, competition

pytestmark = pytest.mark.usefixtures("one_thread")


def _oof_accuracy(oof: pd.DataFrame, comp) -> float:
    truth = dict(zip(comp.train["id"], comp.train["label"], strict=True))
    return float(np.mean(oof[comp.classes].to_numpy().argmax(1) == oof["id"].map(truth).to_numpy()))


def test_string_labels_single_fold_then_the_rest(tmp_path):
    """--folds 1 trains fold 1 only; a full rerun skips it and trains fold 0; OOF far above chance."""
    overrides = ["train.epochs=3", *LEARN]
    cfg, paths, comp, folds = competition(tmp_path, *overrides, n_train=60)
    sets = [a for o in [*FAST, "data.image_size=16", "train.batch_size=16", *overrides] for a in ("--set", o)]
    result = run_script("pipelines/03_train.py", "--folds", "1", "--data", str(cfg.data.dir), *sets,
                        root=paths.root)
    assert result.returncode == 0, result.stderr[-2000:]
    exp = paths.experiment_dir()
    assert not paths.fold_dir(0).exists() and not list(exp.glob("fold0*"))
    fold1 = {p.name for p in paths.fold_dir(1).iterdir()}
    assert {"best.pt", "last.pt", "oof.csv", "history.csv", "learning_curves.png", "tb"} <= fold1
    oof = pd.read_csv(paths.oof_csv(), dtype={"id": str})
    assert list(oof.columns) == ["id", "fold", "cat", "dog", "fox"] and set(oof["fold"]) == {1}
    assert len(oof) == int((folds == 1).sum())
    assert _oof_accuracy(oof, comp) > 0.8  # chance is 1/3
    cv = json.loads(paths.cv_json().read_text())
    assert cv["complete"] is False and list(cv["folds"]) == ["1"]
    history = pd.read_csv(paths.history_csv(1))
    assert {"epoch", "lr", "train_loss", "val_loss", "accuracy", "f1_macro", "score", "time",
            "images_per_s"} <= set(history.columns)
    assert (history["images_per_s"] > 0).all() and np.isfinite(history["images_per_s"]).all()
    for name in ("confusion_matrix.png", "per_class_f1.png"):
        assert (exp / name).stat().st_size > 1000
    fold1_best = paths.best_ckpt(1).stat().st_mtime_ns

    summary = run_cv(cfg, paths)  # everything: fold 1 is finished and skipped
    assert paths.best_ckpt(1).stat().st_mtime_ns == fold1_best
    oof = pd.read_csv(paths.oof_csv(), dtype={"id": str})
    assert sorted(oof["id"]) == sorted(comp.train["id"]) and set(oof["fold"]) == {0, 1}
    assert summary["complete"] and summary["pooled"]["accuracy"] == pytest.approx(_oof_accuracy(oof, comp))
    assert summary["pooled"]["accuracy"] > 0.8
