"""Models: timm names, dropout options, the frozen backbone, local pretrained weights and a fast,
clear failure when hub weights cannot be fetched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file

from imgclf.errors import ConfigError, UserError
from imgclf.models.backbone import classifier_parameters, set_backbone_frozen
from imgclf.models.factory import build_model
from imgclf.training.fit import train_epoch
from imgclf.training.fold import build_fold_run
from tests.helpers.runs import REPO
from tests.helpers.trainkit import competition
from tests.helpers.trainkit import tiny_config as cfg_of

pytestmark = pytest.mark.usefixtures("one_thread")


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"model.name: unknown timm model 'resnet10'.*'resnet10t'"):
        build_model(cfg_of("model.name=resnet10"), 3)


def test_num_classes_and_dropout_options_reach_the_model():
    model = build_model(cfg_of("model.drop_rate=0.3", "model.drop_path_rate=0.2"), 5)
    assert model.get_classifier().out_features == 5 and model.drop_rate == 0.3
    drop_paths = [m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"]
    assert drop_paths and max(drop_paths) == pytest.approx(0.2)
    assert not [m for m in build_model(cfg_of(), 5).modules() if type(m).__name__ == "DropPath"]


def test_set_backbone_frozen_leaves_only_the_head_trainable():
    model = build_model(cfg_of(), 3)
    head = classifier_parameters(model)
    set_backbone_frozen(model, True)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == head and len(head) == 2  # fc weight and bias
    set_backbone_frozen(model, False)
    assert all(p.requires_grad for p in model.parameters())


@pytest.fixture
def source_weights(tmp_path: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(123)  # not the init the model under test gets
    return timm.create_model("resnet10t", pretrained=False).state_dict()  # 1000-class ImageNet head


def _assert_backbone_equals(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    backbone = [k for k in own if not k.startswith("fc.")]
    assert len(backbone) > 50
    for key in backbone:
        assert torch.equal(own[key], weights[key]), key
    assert own["fc.weight"].shape == (3, 512)  # the 1000-class head of the file is skipped


@pytest.mark.parametrize("fmt", ["safetensors", "pth", "pth-wrapped"])
def test_local_pretrained_file_is_loaded(tmp_path, source_weights, fmt):
    path = tmp_path / f"weights.{fmt.split('-')[0]}"
    if fmt == "safetensors":
        save_file(source_weights, str(path))
    elif fmt == "pth":
        torch.save(source_weights, path)
    else:  # a training checkpoint of a DataParallel model: {"state_dict": {"module.conv1...": ...}}
        torch.save({"state_dict": {f"module.{k}": v for k, v in source_weights.items()}, "epoch": 3}, path)
    torch.manual_seed(0)
    model = build_model(cfg_of("model.pretrained=true", f"model.pretrained_path={path}"), 3)
    _assert_backbone_equals(model, source_weights)


def test_local_pretrained_file_initialises_fold_training(tmp_path, source_weights):
    path = tmp_path / "weights.safetensors"
    save_file(source_weights, str(path))
    cfg, paths, comp, folds = competition(tmp_path, "model.pretrained=true", f"model.pretrained_path={path}",
                                          n_train=36)
    run = build_fold_run(cfg, paths, comp, folds, 0, paths.fold_dir(0))
    _assert_backbone_equals(run.model, source_weights)
    train_epoch(run)
    assert not torch.equal(run.model.state_dict()["conv1.0.weight"], source_weights["conv1.0.weight"])


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))  # would run on unpickling


def test_pretrained_file_with_pickled_objects_is_refused(tmp_path, source_weights):
    marker = tmp_path / "unpickled"
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": source_weights, "hook": _Evil(marker)}, path)
    with pytest.raises(ConfigError, match=r"model.pretrained_path: cannot read weights from .*weights.pth"):
        build_model(cfg_of("model.pretrained=true", f"model.pretrained_path={path}"), 3)
    assert not marker.exists()
    with pytest.raises(ConfigError, match="model.pretrained_path: file not found"):
        build_model(cfg_of("model.pretrained=true", f"model.pretrained_path={tmp_path / 'none.pth'}"), 3)


def test_unreachable_hub_fails_fast_naming_pretrained_path(tmp_path, monkeypatch):
    """No network (an endpoint that refuses connections) and an empty cache: one clear error within
    seconds, not a minute of hub retries."""
    monkeypatch.setattr(hf_constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    start = time.perf_counter()
    with pytest.raises(UserError, match="model.pretrained_path") as info:
        build_model(cfg_of("model.pretrained=true"), 3)
    assert time.perf_counter() - start < 10
    assert "\n" not in str(info.value) and "resnet10t" in str(info.value)
    assert hf_constants.HF_HUB_OFFLINE is False  # the offline switch is put back


def test_offline_pretrained_stage_prints_one_error_line(tmp_path):
    cfg, paths, comp, folds = competition(tmp_path, n_train=12)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(REPO / "pipelines/03_train.py"), "--data", str(cfg.data.dir),
         "--set", f"paths.root={paths.root}", "--set", "model.pretrained=true", "--set", "device=cpu"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "model.pretrained_path" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not paths.last_ckpt(0).exists()
    print(f"offline failure after {elapsed:.1f}s (interpreter start included)")
