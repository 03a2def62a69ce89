"""Which views of an image keep its label, decided by evidence on the competition's own data.

Two quick tests on small raw pixels, each an RBF SVC (seconds):

- **Does a view still read as its class?** The SVC is fitted on each fold's training images (a
  sample) and classifies the validation images as they are and in each view (horizontal flip,
  vertical flip, 90-degree turn, transpose). A view whose images are classified about as well as
  the originals (within two standard errors of the pooled score, or a tenth of its gap above chance)
  is one the data already comes in (random 90-degree turns, say). Near chance this test decides
  nothing.
- **Does a view look like the data?** A two-sample classifier test: every image is shown once,
  half of them in the view, with its class as an extra feature, and the SVC tries to tell which
  were turned (cross-validated). When it cannot tell at least most of them apart (accuracy at most
  0.6 plus two standard errors of chance), the view makes images of the class the data could hold
  (texture crops: 0.55-0.63; crops that arrive in random turns: 0.52-0.58). A flipped digit or a
  turned 6 is told apart at once (digits: 0.95-1.0), and so is a mirrored view of one place in a
  photo (0.91-0.97).

A view passing either test is switched on; a view failing both (digits: every one) stays off.
The first test alone cannot see that a mirror is harmless for a texture: an SVC that never saw
mirrored crops misreads them (texture crops: 0.30-0.34 against 0.51), though training with the mirror
helps a network (a plain resnet10t loop on such crops: 0.915 without views, 0.929 with them,
three seeds). The evidence is logged and saved with the plan.

(Fitting the SVC on the training images plus their views was tried as a third test and dropped:
an RBF SVC memorises both and scored digits as well with flips as without.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from imgclf.config.schema import Config

VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hflip": lambda x: x[:, :, ::-1],
    "vflip": lambda x: x[:, ::-1],
    "rot90": lambda x: np.rot90(x, 1, axes=(1, 2)),
    "transpose": lambda x: x.transpose(0, 2, 1, *range(3, x.ndim)),
}
PROBE_SIDE = 16  # pixels per side the SVC sees: enough for the layout, cheap for 2,000 images
MAX_TRAIN, MAX_VALID = 1500, 800
# A view "looks like the data" when the two-sample test tells at most this share of the images
# apart (plus two standard errors of chance): then at least 4 in 5 turned images pass for real ones.
LOOKS_LIKE_DATA = 0.6
MAX_TELL_APART = 1200  # images the two-sample test uses
PROBE_VERSION = 2  # views.json from another version of the probe is made again


def _features(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32) / 255
    return flat - flat.mean(axis=1, keepdims=True)  # brightness-free: the layout decides


def _subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=limit, replace=False)) if n > limit else np.arange(n)


def _tolerance(score: float, n: int) -> float:
    """Two standard errors of an accuracy measured on ``n`` images, at least 0.02."""
    return max(0.02, 2 * math.sqrt(max(score * (1 - score), 1e-4) / max(n, 1)))


def _pixel_svc():
    """The classifier of both tests; imported here so that a stage that never probes does not load it."""
    from sklearn.svm import SVC

    return SVC(kernel="rbf", C=10.0, gamma="scale")


def tell_apart(images: np.ndarray, labels: np.ndarray, view: Callable[[np.ndarray], np.ndarray],
               rng: np.random.Generator) -> float:
    """Cross-validated accuracy of an RBF SVC telling images shown in ``view`` from images shown as
    they are (each image once, half of them turned; its class one-hot as extra features, so that a
    turned image of one class passing for another class does not count as passing). 0.5: the view
    looks like the data; 1.0: every turned image is recognised."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rows = _subsample(len(images), MAX_TELL_APART, rng)
    shown, classes = images[rows].copy(), labels[rows]
    turned = rng.permutation(len(rows)) < len(rows) // 2
    shown[turned] = np.ascontiguousarray(view(shown[turned]))
    # scaled so that images of different classes lie far apart: the SVC compares within a class
    one_hot = np.eye(int(labels.max()) + 1, dtype=np.float32)[classes] * 10.0
    features = np.hstack([_features(shown), one_hot])
    splits = StratifiedKFold(n_splits=min(5, max(2, len(rows) // 20)), shuffle=True,
                             random_state=int(rng.integers(2**31)))
    return float(cross_val_score(_pixel_svc(), features, turned.astype(int), cv=splits).mean())


def looks_like_data_limit(n: int) -> float:
    """The tell-apart accuracy up to which a view counts as looking like the data, for ``n`` images."""
    return LOOKS_LIKE_DATA + 2 * 0.5 / math.sqrt(max(n, 1))


def probe_views(images: np.ndarray, labels: np.ndarray, folds: np.ndarray, seed: int = 0,
                max_folds: int = 5) -> dict:
    """The evidence for every view, from square images (N, S, S[, C]) already at the probe side,
    pooled over the validation images of the first ``max_folds`` folds.

    Returns ``{"base": accuracy, "chance": ..., "tolerance": ..., "views": {view: {valid_in_view,
    tell_apart, keep}}, "decided": bool, "tell_apart_limit": ..., ...}``.
    """
    rng = np.random.default_rng(seed)
    fold_ids = [int(k) for k in np.unique(folds)[:max_folds]]
    hits = {name: [] for name in ("identity", *VIEWS)}
    truth, n_train = [], 0
    for k in fold_ids:
        tr, va = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        tr = tr[_subsample(len(tr), MAX_TRAIN, rng)]
        va = va[_subsample(len(va), MAX_VALID // len(fold_ids) + 1, rng)]
        model = _pixel_svc().fit(_features(images[tr]), labels[tr])
        n_train = max(n_train, len(tr))
        truth.append(labels[va])
        hits["identity"].append(model.predict(_features(images[va])) == labels[va])
        for name, view in VIEWS.items():
            turned = np.ascontiguousarray(view(images[va]))
            hits[name].append(model.predict(_features(turned)) == labels[va])
    acc = {name: float(np.concatenate(h).mean()) for name, h in hits.items()}
    y = np.concatenate(truth)
    base, n_valid = acc["identity"], len(y)
    chance = float(np.bincount(y).max() / n_valid)
    # two standard errors, or a tenth of the gap above chance: a view the data comes in costs the SVC
    # a little (its classes are spread over more poses than it has images), one that is not costs most
    tol = max(_tolerance(base, n_valid), 0.1 * (base - chance))
    decided = base > chance + max(0.1, 2 * tol)
    limit = looks_like_data_limit(min(len(images), MAX_TELL_APART))
    evidence = {}
    for name, view in VIEWS.items():
        told = tell_apart(images, labels, view, rng)
        evidence[name] = {"valid_in_view": round(acc[name], 4), "tell_apart": round(told, 4),
                          "keep": bool((decided and acc[name] >= base - tol) or told <= limit)}
    return {"base": round(base, 4), "chance": round(chance, 4), "tolerance": round(tol, 4),
            "n_train": n_train, "n_valid": n_valid, "folds": len(fold_ids), "decided": bool(decided),
            "tell_apart_limit": round(limit, 4), "views": evidence}


def describe_views(evidence: dict) -> str:
    kept = [v for v, e in evidence["views"].items() if e["keep"]]
    lines = [f"augmentation probe (SVC on {evidence['folds']} folds, <= {evidence['n_train']} train "
             "images each, "
             f"{evidence['n_valid']} validation images, "
             f"{PROBE_SIDE} px): accuracy {evidence['base']:.3f} (chance {evidence['chance']:.3f}, "
             f"tolerance {evidence['tolerance']:.3f}) -> label-preserving views: {', '.join(kept) or 'none'}"]
    if not evidence["decided"]:
        lines.append("  - classifying is too close to chance to tell: only looking like the data decides")
    for name, e in evidence["views"].items():
        lines.append(f"  - {name}: validation images in this view {e['valid_in_view']:.3f}; told apart "
                     f"from the data {e['tell_apart']:.3f} (looks like it up to "
                     f"{evidence['tell_apart_limit']:.3f}) -> {'on' if e['keep'] else 'off'}")
    return "\n".join(lines)


def tta_views(cfg: Config) -> list[str]:
    """The configured TTA views; ``auto`` = identity plus the views the model was trained with
    (candidates: inference keeps each only when it raises the OOF score)."""
    if cfg.infer.tta != "auto":
        return list(cfg.infer.tta)
    aug = cfg.augment
    views = ["identity"]
    views += ["hflip"] * bool(aug.hflip) + ["vflip"] * bool(aug.vflip)
    views += ["rot90", "rot180", "rot270"] * bool(aug.rot90) + ["transpose"] * bool(aug.transpose)
    return views
