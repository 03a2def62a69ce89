"""TTA inference of a trained experiment: test.csv is the fold mean of each checkpoint's softmax, keyed by
test id in sample_submission's order; oof_tta.csv covers every train image once; TTA gain on OOF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from imgclf.config.loading import load_config
from imgclf.data.folds import read_folds
from imgclf.data.images import read_resized
from imgclf.data.ingest import load_competition
from imgclf.errors import UserError
from imgclf.inference.predict import experiment_config, infer_experiment
from imgclf.paths import Paths
from imgclf.training.checkpoint import load_model_for_inference
from imgclf.training.cv import run_cv
from tests.helpers.runs import FAST
from tests.helpers.trainkit import SIDE, competition

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-fold experiment trained for one epoch; the tests work on copies of its folder."""
    top = tmp_path_factory.mktemp("infer")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg, paths, _, _ = competition(top, "train.epochs=1", n_train=30)
        run_cv(cfg, paths)
    finally:
        torch.set_num_threads(threads)
    return top


def _project(trained: Path, tmp_path: Path, *overrides: str):
    """A copy of the trained tree (modification times kept) with its config, paths, competition, folds."""
    shutil.copytree(trained, tmp_path / "copy")
    top = tmp_path / "copy"
    cfg = load_config(None, [*FAST, f"data.image_size={SIDE}", "train.batch_size=16", "train.epochs=1",
                             f"paths.root={top / 'project'}", f"data.dir={top / 'shapes'}", *overrides])
    paths = Paths.from_config(cfg)
    comp = load_competition(cfg, paths)
    return cfg, paths, comp, read_folds(paths, comp)


def _softmax_of_checkpoint(path: Path, comp, images: np.ndarray) -> np.ndarray:
    """The checkpoint's class probabilities computed by hand: uint8 RGB -> [0, 1] -> its mean/std."""
    model, state = load_model_for_inference(path, comp, torch.device("cpu"))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    x = (x - state["mean"].view(1, 3, 1, 1)) / state["std"].view(1, 3, 1, 1)
    with torch.no_grad():
        return torch.softmax(model(x).float(), dim=1).numpy()


def test_test_csv_is_the_fold_mean_of_each_checkpoint_keyed_by_test_id(trained: Path, tmp_path: Path) -> None:
    cfg, paths, comp, folds = _project(trained, tmp_path)
    infer_experiment(cfg, paths, comp, folds, "baseline")
    test = pd.read_csv(paths.test_csv(), dtype={"id": str})
    assert list(test.columns) == ["id", *comp.classes]
    assert test["id"].tolist() == comp.test["id"].astype(str).tolist()  # sample_submission's order
    images = np.stack([read_resized(p, SIDE) for p in comp.test["path"]])
    by_hand = np.mean([_softmax_of_checkpoint(paths.model_ckpt(k, None, cfg.train.checkpoint), comp, images)
                       for k in (0, 1)], axis=0)
    np.testing.assert_allclose(test[comp.classes].to_numpy(), by_hand, atol=1e-5)
    np.testing.assert_allclose(test[comp.classes].sum(axis=1), 1.0, atol=1e-6)


def test_oof_tta_covers_each_train_image_once_and_identity_tta_gains_nothing(trained: Path,
                                                                             tmp_path: Path) -> None:
    cfg, paths, comp, folds = _project(trained, tmp_path)
    tta = infer_experiment(cfg, paths, comp, folds, "baseline")
    oof_tta = pd.read_csv(paths.oof_tta_csv(), dtype={"id": str})
    assert oof_tta["id"].tolist() == comp.train["id"].astype(str).tolist()
    assert oof_tta["fold"].tolist() == folds.tolist()
    plain = pd.read_csv(paths.oof_csv(), dtype={"id": str}).set_index("id").loc[oof_tta["id"]]
    np.testing.assert_allclose(oof_tta[comp.classes].to_numpy(), plain[comp.classes].to_numpy(), atol=1e-5)
    assert tta["views"] == ["identity"] and tta["gain"] == pytest.approx(0.0, abs=1e-9)
    assert json.loads(paths.infer_json().read_text())["tta"] == tta


def test_an_unchanged_run_is_skipped_and_new_views_redo_it(trained: Path, tmp_path: Path) -> None:
    cfg, paths, comp, folds = _project(trained, tmp_path)
    infer_experiment(cfg, paths, comp, folds, "baseline")
    first = paths.test_csv().read_text(), paths.test_csv().stat().st_mtime_ns
    infer_experiment(cfg, paths, comp, folds, "baseline")
    assert (paths.test_csv().read_text(), paths.test_csv().stat().st_mtime_ns) == first
    flipped = cfg.updated({"infer.tta": ["identity", "hflip", "vflip"]})
    tta = infer_experiment(flipped, paths, comp, folds, "baseline")
    assert tta["views"] == ["identity", "hflip", "vflip"]
    assert paths.test_csv().read_text() != first[0]
    assert json.loads(paths.infer_json().read_text())["stamp"]["views"] == tta["views"]


def test_experiment_config_keeps_training_keys_and_takes_this_runs_inference(trained: Path,
                                                                             tmp_path: Path) -> None:
    cfg, paths, _, _ = _project(trained, tmp_path, "train.lr=0.5", "infer.batch_size=7")
    ecfg = experiment_config(cfg, paths, "baseline")
    assert ecfg.infer.batch_size == 7 and ecfg.train.lr == load_config().train.lr  # the trained lr
    assert ecfg.data.dir == cfg.data.dir


def test_an_unfinished_fold_is_refused_naming_the_command(trained: Path, tmp_path: Path) -> None:
    cfg, paths, comp, folds = _project(trained, tmp_path)
    paths.fold_oof(1).unlink()
    with pytest.raises(UserError, match=r"fold 1 is not finished .*pipelines/03_train\.py --folds 1"):
        infer_experiment(cfg, paths, comp, folds, "baseline")
    assert not paths.test_csv().exists()
