"""The embedded demo competition: scikit-learn's digits written out as a Kaggle CSV layout.

1,797 real 8x8 handwritten digits ship inside scikit-learn, so the demo needs no download. They
are upscaled to 32x32 PNGs with random hex ids; a stratified ~20% is held out as the test set
whose labels go to ``solution.csv`` (for the local scorer only).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from imgclf.atomic import write_csv

log = logging.getLogger(__name__)

DEMO_SIDE = 32
MARKER = "solution.csv"  # written last: its presence means the demo is complete


def materialise_digits(target: Path, seed: int = 0, test_fraction: float = 0.2) -> Path:
    """Write the demo into ``target`` (idempotent: a complete demo is reused as it is)."""
    if (target / MARKER).is_file():
        return target
    # imported only when the demo is written: every other stage is spared sklearn.datasets
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    log.info("materialising the digits demo into %s", target)
    if target.exists():
        shutil.rmtree(target)  # a partial demo from an interrupted run
    digits = load_digits()
    rng = np.random.default_rng(seed)
    ids = [f"{v:012x}" for v in rng.choice(16**12, size=len(digits.target), replace=False)]
    labels = digits.target.astype(int)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed)
    for split, idx in (("train", train_idx), ("test", test_idx)):
        folder = target / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in idx:
            pixels = (digits.images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
            big = cv2.resize(pixels, (DEMO_SIDE, DEMO_SIDE), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(folder / f"{ids[i]}.png"), big)
    train = pd.DataFrame({"id": [ids[i] for i in train_idx], "label": labels[train_idx]})
    test_ids = [ids[i] for i in test_idx]
    write_csv(target / "train.csv", train)
    write_csv(target / "sample_submission.csv", pd.DataFrame({"id": test_ids, "label": 0}))
    write_csv(target / MARKER, pd.DataFrame({"id": test_ids, "label": labels[test_idx]}))
    return target
