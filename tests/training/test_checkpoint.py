"""Checkpoints: plain-type round trips written atomically, never unpickling arbitrary objects."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.atomic import TMP_PREFIX
from imgclf.errors import UserError
from imgclf.training.checkpoint import (
    check_compatible,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def test_round_trip_of_plain_state_leaves_no_temp_file(tmp_path):
    state = {"model": {"w": torch.arange(6.0).view(2, 3)}, "epoch": 3, "history": [{"loss": 0.5}],
             "tracker": [0.9, 2, 0], "classes": ["cat", "dog"], "config": {"train": {"lr": 1e-3}}}
    path = tmp_path / "fold0" / "last.pt"
    save_checkpoint(state, path)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert ({k: v for k, v in loaded.items() if k != "model"}
            == {k: v for k, v in state.items() if k != "model"})
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    assert not any(p.name.startswith(TMP_PREFIX) for p in path.parent.iterdir())


class Payload:
    """A custom class: unpickling it would run code (here: create a marker file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_with_a_pickled_custom_class_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "best.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": Payload(marker)}, path)  # a foreign/malicious file
    with pytest.raises(UserError, match=r"best.pt: not a readable checkpoint \(UnpicklingError"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_or_missing_checkpoint_is_a_user_error(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random(), np.random.normal(), torch.rand(1)  # move off the seeded start
    save_checkpoint({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.normal(size=3).tolist(), torch.rand(3).tolist())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.normal(size=3).tolist(), torch.rand(3).tolist()) == expected


def test_checkpoint_for_other_classes_is_refused(tmp_path):
    check_compatible({"classes": ["a", "b"]}, ["a", "b"], tmp_path / "best.pt")
    with pytest.raises(UserError, match="made for 2 classes"):
        check_compatible({"classes": ["a", "b"]}, ["a", "b", "c"], tmp_path / "best.pt")
