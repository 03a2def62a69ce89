"""The augmentation probe: data that arrives in random 90-degree turns turns rotations on; digits
(real ones, bundled with scikit-learn) keep flips and turns off; a probe near chance decides nothing."""

from __future__ import annotations

import cv2
import numpy as np
from sklearn.datasets import load_digits

from imgclf.planning.views import PROBE_SIDE, describe_views, probe_views


def _digits(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    images = np.stack([cv2.resize((im * 16).clip(0, 255).astype(np.uint8), (PROBE_SIDE, PROBE_SIDE))
                       for im in d.images[:n]])
    return images, d.target[:n]


def _kept(evidence: dict) -> set[str]:
    return {v for v, e in evidence["views"].items() if e["keep"]}


def test_digits_keep_flips_and_turns_off() -> None:
    images, labels = _digits()
    evidence = probe_views(images, labels, np.arange(len(labels)) % 3)
    assert evidence["decided"] and evidence["base"] > 0.9
    assert _kept(evidence) == set()
    assert "label-preserving views: none" in describe_views(evidence)


def test_random_quarter_turns_switch_rotations_on() -> None:
    images, labels = _digits()
    rng = np.random.default_rng(0)
    turned = np.stack([np.rot90(im, int(rng.integers(4))) for im in images])
    evidence = probe_views(turned, labels, np.arange(len(labels)) % 3)
    assert "rot90" in _kept(evidence)
    assert evidence["views"]["rot90"]["valid_in_view"] >= evidence["base"] - evidence["tolerance"]


def test_a_probe_near_chance_keeps_every_view_off() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(120, PROBE_SIDE, PROBE_SIDE), dtype=np.uint8)
    labels = np.arange(120) % 2
    evidence = probe_views(images, labels, np.arange(120) % 3)
    assert not evidence["decided"] and _kept(evidence) == set()
