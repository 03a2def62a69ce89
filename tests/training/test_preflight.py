"""Preflight: a bad model name or a broken train image fails in seconds, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.errors import ConfigError, DataError
from imgclf.training.preflight import check_inference_inputs, check_training_inputs
from tests.helpers.datasets import load_fixture, make_kaggle_dataset


def test_an_unknown_timm_model_is_named_with_the_closest_ones(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "comp", n_train=6, n_test=2, side=16)
    comp, paths = load_fixture(fast_cfg, root)
    with pytest.raises(ConfigError, match=r"unknown timm model 'resnet10x'; did you mean .*'resnet10t'"):
        check_training_inputs(fast_cfg(root, "model.name=resnet10x"), comp)
    assert not paths.experiment_dir().exists()


def test_a_cut_short_image_is_named_and_counted(tmp_path: Path, fast_cfg) -> None:
    root = make_kaggle_dataset(tmp_path / "comp", n_train=6, n_test=2, side=16)
    comp, _ = load_fixture(fast_cfg, root)
    check_training_inputs(fast_cfg(root), comp)  # clean data passes
    for path in comp.train["path"].iloc[:2]:
        path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match=r"train image .*: .* \(and 1 more bad train image\(s\)\)"):
        check_training_inputs(fast_cfg(root), comp)
    check_inference_inputs(comp)  # the test images are intact
    comp.test["path"].iloc[0].write_bytes(b"")
    with pytest.raises(DataError, match="test image"):
        check_inference_inputs(comp)
