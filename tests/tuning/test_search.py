"""The search space as Optuna distributions: suggestions re-validated, bad ranges refused before any trial."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from imgclf.config.loading import load_config
from imgclf.errors import ConfigError
from imgclf.tuning.search import check_space, make_pruner, suggest

pytestmark = pytest.mark.usefixtures("one_thread")  # up to two workers share two cores


def test_suggest_and_space_checks(tmp_path: Path) -> None:
    space = {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
             "augment.affine_p": {"type": "float", "low": 0.0, "high": 0.8, "step": 0.2},
             "train.batch_size": {"type": "int", "low": 8, "high": 64, "log": True},
             "model.name": {"type": "categorical", "choices": ["resnet10t", "resnet18"]}}
    cfg = load_config(None, {"tune.space": space})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        tuned = suggest(trial, cfg)
        assert tuned.train.lr == trial.params["train.lr"] and 1e-4 <= tuned.train.lr <= 1e-1
        assert round(tuned.augment.affine_p / 0.2, 6).is_integer()
        assert 8 <= tuned.train.batch_size <= 64 and isinstance(tuned.train.batch_size, int)
        assert tuned.model.name in ("resnet10t", "resnet18")
        assert tuned.train.epochs == cfg.train.epochs  # everything else untouched
    with pytest.raises(ConfigError, match=r"tune.space.train.lr"):
        check_space(load_config(None, {"tune.space": {"train.lr": {"type": "float", "low": 0.0, "high": 1.0,
                                                                   "log": True}}}))
    with pytest.raises(ConfigError, match=r"tune.space.train.optimizer.*'rmsprop'"):
        check_space(load_config(None, {"tune.space": {"train.optimizer": {"type": "categorical",
                                                                          "choices": ["adamw", "rmsprop"]}}}))
    with pytest.raises(ConfigError, match=r"train.lrr.*did you mean 'train.lr'"):
        load_config(None, {"tune.space": {"train.lrr": {"type": "float", "low": 0.1, "high": 1}}})
    kinds = {name: type(make_pruner(load_config(None, {"tune.pruner": name}), steps=8)).__name__
             for name in ("median", "hyperband", "successive_halving", "none")}
    assert kinds == {"median": "MedianPruner", "hyperband": "HyperbandPruner",
                     "successive_halving": "SuccessiveHalvingPruner", "none": "NopPruner"}
