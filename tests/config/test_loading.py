"""The typed config: defaults, YAML merge, dotted overrides, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imgclf.config.loading import DEFAULT_CONFIG_FILE, load_config, parse_override
from imgclf.config.schema import Config
from imgclf.errors import ConfigError


def _leaf_keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        if isinstance(value, dict) and key != "space":
            keys |= _leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_default_yaml_mirrors_the_schema() -> None:
    """Every key lives in config.py and default.yaml with the same default.

    ``paths.root`` is the one exception: its default is wherever the checkout lives, so the YAML
    only documents it in a comment.
    """
    documented = _leaf_keys(yaml.safe_load(DEFAULT_CONFIG_FILE.read_text()))
    assert documented | {"paths.root"} == _leaf_keys(Config().to_dict())
    assert "paths:\n#   root:" in DEFAULT_CONFIG_FILE.read_text()
    cfg = load_config()
    assert cfg == Config()
    assert ((cfg.train.epochs, cfg.folds.n_splits, cfg.model.name, cfg.data.image_size)
            == (None, 5, "resnet10t", None))  # null: from the training plan


def test_config_file_merges_over_defaults_and_set_goes_last(tmp_path: Path) -> None:
    user = tmp_path / "exp.yaml"
    user.write_text("experiment: big\ntrain:\n  epochs: 3\n  lr: 0.01\nmodel:\n  name: resnet18\n")
    cfg = load_config(user, ["train.lr=1e-3", "model.pretrained=true", "infer.tta=[identity, hflip]",
                             "train.clip_grad=null", "data.image_size=64"])
    assert (cfg.experiment, cfg.train.epochs, cfg.model.name) == ("big", 3, "resnet18")
    assert cfg.train.lr == pytest.approx(1e-3)  # --set wins over the file
    assert cfg.model.pretrained is True and cfg.infer.tta == ["identity", "hflip"]
    assert cfg.train.clip_grad is None and cfg.data.image_size == 64
    assert cfg.train.batch_size == Config().train.batch_size  # untouched keys keep their defaults


def test_parse_override_reads_values_as_yaml() -> None:
    assert parse_override("train.epochs=3") == ("train.epochs", 3)
    assert parse_override("folds.seed = 7") == ("folds.seed", 7)
    assert parse_override("experiment=a=b") == ("experiment", "a=b")
    assert parse_override("tune.folds=[0, 2]") == ("tune.folds", [0, 2])
    with pytest.raises(ConfigError, match="--set expects KEY=VALUE, got 'train.epochs'"):
        parse_override("train.epochs")


@pytest.mark.parametrize(("override", "bad", "hint"), [
    ("train.epoch=3", "train.epoch", "train.epochs"),
    ("model.nmae=resnet18", "model.nmae", "model.name"),
    ("trian.lr=0.1", "trian.lr", "train.lr"),
])
def test_unknown_key_names_it_and_the_closest_valid_key(override: str, bad: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == f"unknown config key '{bad}'; did you mean '{hint}'?"


def test_unknown_key_in_a_config_file(tmp_path: Path) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text("folds:\n  n_split: 3\n")
    with pytest.raises(ConfigError,
                       match=r"unknown config key 'folds.n_split'; did you mean 'folds.n_splits'"):
        load_config(user)


@pytest.mark.parametrize(("override", "key"), [
    ("train.epochs=abc", "train.epochs"),
    ("train.lr=-1", "train.lr"),
    ("model.pretrained=maybe", "model.pretrained"),
    ("train.optimizer=adagrad", "train.optimizer"),
    ("metric=accuracyy", "metric"),
])
def test_wrong_value_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    message = str(err.value)
    assert message.startswith(f"config key '{key}':") and "\n" not in message


def test_tune_space_rejects_unknown_parameter_paths() -> None:
    with pytest.raises(ConfigError,
                       match=r"unknown config key 'train.lrr' in tune.space; did you mean 'train.lr'"):
        load_config(None, ["tune.space.train.lrr={type: float, low: 0.001, high: 0.1}"])
    with pytest.raises(ConfigError,
                       match=r"config key 'tune.space.train.momentum': .*needs 'low' and 'high'"):
        load_config(None, ["tune.space.train.momentum={type: float}"])
    cfg = load_config(None, ["tune.space.train.momentum={type: float, low: 0.8, high: 0.99}"])
    assert cfg.tune.space["train.momentum"].high == pytest.approx(0.99)


def test_updated_copy_is_revalidated() -> None:
    cfg = load_config()
    assert cfg.updated({"train.epochs": 2}).train.epochs == 2 and cfg.train.epochs is None
    with pytest.raises(ConfigError, match="train.epochs"):
        cfg.updated({"train.epochs": 0})


def test_missing_or_malformed_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken)
