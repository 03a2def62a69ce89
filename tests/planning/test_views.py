"""The augmentation probe: data that arrives in random 90-degree turns turns rotations on; digits
(real ones, bundled with scikit-learn) keep flips and turns off; crops of real grayscale textures,
which a pixel classifier barely tells apart by class, turn every view on because their views look
like the data; near chance only that second test decides."""

from __future__ import annotations

import cv2
import numpy as np
from matplotlib import cbook
from sklearn.datasets import load_digits, load_sample_images

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
    assert all(e["tell_apart"] > 0.9 for e in evidence["views"].values())  # a flipped digit is no digit
    assert "label-preserving views: none" in describe_views(evidence)


def test_random_quarter_turns_switch_rotations_on() -> None:
    images, labels = _digits()
    rng = np.random.default_rng(0)
    turned = np.stack([np.rot90(im, int(rng.integers(4))) for im in images])
    evidence = probe_views(turned, labels, np.arange(len(labels)) % 3)
    assert "rot90" in _kept(evidence)
    assert evidence["views"]["rot90"]["valid_in_view"] >= evidence["base"] - evidence["tolerance"]


def _texture_crops(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale crops (24-64 px windows anywhere, at the probe side) of four real images; the class
    is the source, as in a texture competition."""
    china, flower = load_sample_images().images
    portrait = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    relief = np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False))["elevation"]
    sources = [cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY), cv2.cvtColor(china, cv2.COLOR_RGB2GRAY),
               cv2.cvtColor(flower, cv2.COLOR_RGB2GRAY),
               ((relief - relief.min()) / np.ptp(relief) * 255).astype(np.uint8)]
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        source = sources[i % 4]
        w = int(rng.uniform(24, 64))
        r, c = rng.integers(0, source.shape[0] - w), rng.integers(0, source.shape[1] - w)
        crop = source[r:r + w, c:c + w]
        images.append(cv2.resize(crop, (PROBE_SIDE, PROBE_SIDE), interpolation=cv2.INTER_AREA))
    return np.stack(images), np.arange(n) % 4


def test_texture_crops_turn_every_view_on_because_their_views_look_like_the_data() -> None:
    images, labels = _texture_crops()
    evidence = probe_views(images, labels, np.arange(len(labels)) % 3)
    assert not evidence["decided"]  # classifying alone would have left every view off
    assert _kept(evidence) == {"hflip", "vflip", "rot90", "transpose"}
    assert all(e["tell_apart"] <= evidence["tell_apart_limit"] for e in evidence["views"].values())
    assert "only looking like the data decides" in describe_views(evidence)


def test_near_chance_a_view_that_changes_the_look_stays_off() -> None:
    """Noise over a top-to-bottom brightness ramp, random labels: a mirror keeps the ramp, a vertical
    flip, a turn or a transpose moves it, and the two-sample test sees it."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 160, PROBE_SIDE)[:, None]
    images = (rng.integers(0, 96, size=(120, PROBE_SIDE, PROBE_SIDE)) + ramp).astype(np.uint8)
    evidence = probe_views(images, np.arange(120) % 2, np.arange(120) % 3)
    assert not evidence["decided"]
    assert _kept(evidence) == {"hflip"}
    assert evidence["views"]["vflip"]["tell_apart"] > 0.9
