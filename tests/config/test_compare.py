"""Which config changes make an experiment's checkpoints stale, and how differences are named."""

from __future__ import annotations

from imgclf.config.compare import config_differences, training_view
from imgclf.config.loading import load_config


def test_training_view_ignores_what_does_not_change_the_result() -> None:
    base = load_config().to_dict()
    same = load_config(None, ["data.cache=none", "train.num_workers=3", "infer.batch_size=8",
                              "data.dir=/somewhere/else", "ensemble.method=soft"]).to_dict()
    assert config_differences(training_view(base), training_view(same)) == []


def test_differences_are_named_by_dotted_key_old_and_new() -> None:
    old = training_view(load_config().to_dict())
    new = training_view(load_config(None, ["train.lr=0.5", "model.name=resnet18"]).to_dict())
    assert config_differences(old, new) == ["model.name: 'resnet10t' -> 'resnet18'", "train.lr: 0.002 -> 0.5"]
