"""Tiny real ordinal and regression competitions: crops of scikit-learn's two bundled photos,
darkened and blurred by a severity that grows continuously. Ordinal: the grade is the severity's
band, drawn imbalanced like APTOS 2019 (49/10/27/5/8 %); regression: the target is the severity itself
on a 0-100 scale (PetFinder-like)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.datasets import load_sample_images

APTOS_SHARES = (0.49, 0.10, 0.27, 0.05, 0.08)


def severity_image(photos: list[np.ndarray], severity: float, rng: np.random.Generator,
                   side: int = 32) -> np.ndarray:
    """A random crop of a real photo; severity 0 (as taken) .. 5 (dark and blurred)."""
    photo = photos[int(rng.integers(len(photos)))]
    crop = int(rng.integers(96, 200))
    y, x = int(rng.integers(photo.shape[0] - crop)), int(rng.integers(photo.shape[1] - crop))
    image = cv2.resize(photo[y:y + crop, x:x + crop], (side, side), interpolation=cv2.INTER_AREA)
    image = image.astype(float)
    sigma = 0.2 + 0.35 * severity
    image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image * (1.0 - 0.15 * severity)
    return np.clip(image, 0, 255).astype(np.uint8)[:, :, ::-1]  # RGB -> BGR for cv2.imwrite


def make_ordinal_dataset(root: Path, n_train: int = 200, n_test: int = 50, task: str = "ordinal",
                         seed: int = 0, side: int = 32, groups: bool = False) -> Path:
    """``task``: ``ordinal`` (id_code,diagnosis: grades 0-4) or ``regression`` (Id,Pawpularity: 0-100);
    the test truth goes to solution.csv."""
    rng = np.random.default_rng(seed)
    photos = list(load_sample_images().images)
    tables = {}
    for split, count in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True, exist_ok=True)
        if task == "ordinal":
            grades = rng.choice(5, size=count, p=np.array(APTOS_SHARES) / sum(APTOS_SHARES))
            severity = grades + rng.uniform(0, 1, size=count)
            target = grades
        else:
            severity = rng.uniform(0, 5, size=count)
            target = np.round(severity * 20, 2)
        ids = [f"{split[:2]}{i:04d}" for i in range(count)]
        for image_id, s in zip(ids, severity, strict=True):
            cv2.imwrite(str(root / split / f"{image_id}.png"), severity_image(photos, float(s), rng, side))
        tables[split] = (ids, target)
    id_col, target_col = ("id_code", "diagnosis") if task == "ordinal" else ("Id", "Pawpularity")
    train = pd.DataFrame({id_col: tables["train"][0], target_col: tables["train"][1]})
    if groups:
        train["PatientID"] = [f"p{i // 2:03d}" for i in range(len(train))]
    train.to_csv(root / "train.csv", index=False)
    test = pd.DataFrame({id_col: tables["test"][0], target_col: tables["test"][1]})
    test.to_csv(root / "solution.csv", index=False)
    test.assign(**{target_col: 0}).to_csv(root / "sample_submission.csv", index=False)
    return root
