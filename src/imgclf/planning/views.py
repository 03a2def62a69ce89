"""Which views of an image keep its label, decided by evidence on the competition's own folds.

A quick probe, not a guess from the data's look: an RBF SVC on small raw pixels is fitted on each
fold's training images (a sample of them), and every validation image is classified as it is and
turned into each candidate view (horizontal flip, vertical flip, 90-degree turn, transpose). A view
whose images are classified about as well as the originals (within two standard errors of the
pooled score, or a tenth of its gap above chance) is one the data already comes in (random
90-degree turns, say): training on it and averaging it at test time can only help. A view that
costs accuracy is not label-preserving here (a turned 6 is a 9; a flipped digit is no digit).
When the probe cannot tell (the SVC is near chance), every view stays off: the safe default. The
evidence is logged and saved with the plan.

(Fitting the SVC on the training images plus their views was tried as a second test and dropped:
an RBF SVC memorises both and scored digits as well with flips as without.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hflip": lambda x: x[:, :, ::-1],
    "vflip": lambda x: x[:, ::-1],
    "rot90": lambda x: np.rot90(x, 1, axes=(1, 2)),
    "transpose": lambda x: x.transpose(0, 2, 1, *range(3, x.ndim)),
}
PROBE_SIDE = 16  # pixels per side the SVC sees: enough for the layout, cheap for 2,000 images
MAX_TRAIN, MAX_VALID = 1500, 800


def _features(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32) / 255
    return flat - flat.mean(axis=1, keepdims=True)  # brightness-free: the layout decides


def _subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=limit, replace=False)) if n > limit else np.arange(n)


def _tolerance(score: float, n: int) -> float:
    """Two standard errors of an accuracy measured on ``n`` images, at least 0.02."""
    return max(0.02, 2 * math.sqrt(max(score * (1 - score), 1e-4) / max(n, 1)))


def probe_views(images: np.ndarray, labels: np.ndarray, folds: np.ndarray, seed: int = 0,
                max_folds: int = 5) -> dict:
    """The evidence for every view, from square images (N, S, S[, C]) already at the probe side,
    pooled over the validation images of the first ``max_folds`` folds.

    Returns ``{"base": accuracy, "chance": ..., "tolerance": ..., "views": {view: {valid_in_view,
    keep}}, "decided": bool, ...}``.
    """
    from sklearn.svm import SVC  # a stage that never probes does not import sklearn's SVC

    rng = np.random.default_rng(seed)
    fold_ids = [int(k) for k in np.unique(folds)[:max_folds]]
    hits = {name: [] for name in ("identity", *VIEWS)}
    truth, n_train = [], 0
    for k in fold_ids:
        tr, va = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        tr = tr[_subsample(len(tr), MAX_TRAIN, rng)]
        va = va[_subsample(len(va), MAX_VALID // len(fold_ids) + 1, rng)]
        model = SVC(kernel="rbf", C=10.0, gamma="scale").fit(_features(images[tr]), labels[tr])
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
    evidence = {name: {"valid_in_view": round(acc[name], 4),
                       "keep": bool(decided and acc[name] >= base - tol)} for name in VIEWS}
    return {"base": round(base, 4), "chance": round(chance, 4), "tolerance": round(tol, 4),
            "n_train": n_train, "n_valid": n_valid, "folds": len(fold_ids), "decided": bool(decided),
            "views": evidence}


def describe_views(evidence: dict) -> str:
    kept = [v for v, e in evidence["views"].items() if e["keep"]]
    lines = [f"augmentation probe (SVC on {evidence['folds']} folds, <= {evidence['n_train']} train "
             "images each, "
             f"{evidence['n_valid']} validation images, "
             f"{PROBE_SIDE} px): accuracy {evidence['base']:.3f} (chance {evidence['chance']:.3f}, "
             f"tolerance {evidence['tolerance']:.3f}) -> label-preserving views: {', '.join(kept) or 'none'}"]
    if not evidence["decided"]:
        lines.append("  - the probe is too close to chance to tell: every view stays off")
    for name, e in evidence["views"].items():
        lines.append(f"  - {name}: validation images in this view {e['valid_in_view']:.3f} -> "
                     f"{'on' if e['keep'] else 'off'}")
    return "\n".join(lines)
