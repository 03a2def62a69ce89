"""Grad-CAM grids: each OOF image explained by its own fold's checkpoint, correct and wrong rows as
the OOF says, for timm CNNs and the multi-head mask model."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from imgclf.config.loading import load_config
from imgclf.models.factory import build_model
from imgclf.training.cam import cam_overlays, pick_rows, target_layer, write_cam_grid
from imgclf.training.cv import run_cv
from tests.helpers.runs import FAST
from tests.helpers.trainkit import LEARN, competition, cpu_runtime

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pick_rows_single_label_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.45, 0.55]])
    picks = pick_rows(labels, probs, multi_label=False, per_kind=2)
    got = [(p["row"], p["class"], p["kind"], p["target"]) for p in picks]
    # class 0: correct rows 0 (0.9) then 1 (0.6); wrong row 2, explained as what it was taken for (1)
    # class 1: correct rows 3 (0.7) then 4 (0.55); no wrong row
    assert got == [(0, 0, "correct", 0), (1, 0, "correct", 0), (2, 0, "wrong", 1),
                   (3, 1, "correct", 1), (4, 1, "correct", 1)]


def test_pick_rows_multi_label_by_hand() -> None:
    labels = np.array([[1, 0], [1, 1], [0, 1]])
    probs = np.array([[0.8, 0.7], [0.3, 0.9], [0.1, 0.6]])
    picks = pick_rows(labels, probs, multi_label=True, per_kind=1)
    got = [(p["row"], p["class"], p["kind"]) for p in picks]
    # label 0: row 0 right; row 1 missed (p 0.3). label 1: row 1 right (0.9); row 0 a false positive
    assert got == [(0, 0, "correct"), (1, 0, "wrong"), (1, 1, "correct"), (0, 1, "wrong")]


def test_target_layer_comes_from_feature_info_and_keeps_a_spatial_map() -> None:
    cfg = load_config(None, FAST)
    model = build_model(cfg, 3)
    assert target_layer(model, 32) is model.layer2  # 32 px: layer2 is 4x4, layer3/4 would be 2x2/1x1
    assert target_layer(model, 128) is model.layer4
    heads = build_model(load_config(None, [*FAST, "model.heads=mask"]), 18)
    assert target_layer(heads, 64) is heads.backbone.layer3


def test_overlays_for_the_multi_head_model() -> None:
    cfg = load_config(None, [*FAST, "model.heads=mask"])
    model = build_model(cfg, 18).eval()
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    overlays = cam_overlays(model, images, [0, 7, 17], cpu_runtime(cfg))
    assert overlays.shape == (3, 32, 32, 3) and overlays.dtype == np.uint8
    assert not np.array_equal(overlays[0], images[0])  # the heatmap is laid over the image


def test_each_image_is_explained_by_its_own_fold(tmp_path, caplog) -> None:
    cfg, paths, comp, folds = competition(tmp_path, "train.epochs=2", *LEARN, "data.image_size=32",
                                          n_train=36, side=32)
    run_cv(cfg, paths)
    errors = paths.errors_dir()
    shown = pd.read_csv(errors / "cam.csv", dtype={"id": str})
    fold_of = dict(zip(comp.train["id"].astype(str), folds, strict=True))
    assert (shown["fold"] == shown["id"].map(fold_of)).all()  # OOF: the fold that never trained on it
    oof = pd.read_csv(paths.oof_csv(), dtype={"id": str}).set_index("id")
    ids = comp.train["id"].astype(str)
    truth = {i: comp.classes[k] for i, k in zip(ids, comp.train["label"], strict=True)}
    pred = oof[comp.classes].idxmax(axis=1)
    for row in shown.to_dict("records"):
        assert row["kind"] == ("correct" if pred[row["id"]] == truth[row["id"]] else "wrong")
        assert row["explains"] == pred[row["id"]] and row["class"] == truth[row["id"]]
    assert set(shown["class"]) == set(comp.classes)
    with Image.open(errors / "cam.png") as im:
        assert im.width > 200 and im.height > 200
    # a broken checkpoint costs the grid, with one warning line, not the run
    torch.save({"not": "a checkpoint"}, paths.model_ckpt(0, None, cfg.train.checkpoint))
    (errors / "cam.png").unlink()
    with caplog.at_level(logging.WARNING):
        write_cam_grid(cfg, paths, comp, oof.reset_index(), None)
    assert not (errors / "cam.png").exists()
    assert [r.message for r in caplog.records if "class-activation" in r.message][0].startswith(
        "no class-activation maps for experiment")
