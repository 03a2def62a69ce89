"""The embedded demo: scikit-learn's digits as a complete, deterministic Kaggle CSV layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from imgclf.data.demo import DEMO_SIDE, materialise_digits


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialise_digits(tmp_path_factory.mktemp("demo") / "digits")


def _upscaled(image: np.ndarray) -> bytes:
    """The demo's own pixel transform, to find each written image among the original digits."""
    pixels = (image * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return cv2.resize(pixels, (DEMO_SIDE, DEMO_SIDE), interpolation=cv2.INTER_CUBIC).tobytes()


def test_demo_layout_and_labels(demo: Path) -> None:
    train = pd.read_csv(demo / "train.csv", dtype={"id": str})
    sample = pd.read_csv(demo / "sample_submission.csv", dtype={"id": str})
    solution = pd.read_csv(demo / "solution.csv", dtype={"id": str})
    train_files, test_files = sorted((demo / "train").iterdir()), sorted((demo / "test").iterdir())

    assert len(train_files) + len(test_files) == 1797 and len(test_files) == 360  # ~20% held out
    assert ({p.stem for p in train_files} == set(train["id"])
            and {p.stem for p in test_files} == set(sample["id"]))
    assert list(sample.columns) == ["id", "label"] and list(train.columns) == ["id", "label"]
    assert solution["id"].tolist() == sample["id"].tolist()
    assert not set(train["id"]) & set(sample["id"])
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in train["id"])  # random hex ids

    digits = load_digits()
    target_of = {_upscaled(img): int(t) for img, t in zip(digits.images, digits.target, strict=True)}
    for frame, folder in ((train, "train"), (solution, "test")):
        for image_id, label in zip(frame["id"], frame["label"], strict=True):
            image = cv2.imread(str(demo / folder / f"{image_id}.png"), cv2.IMREAD_UNCHANGED)
            assert image.shape == (DEMO_SIDE, DEMO_SIDE) and image.dtype == np.uint8
            assert target_of[image.tobytes()] == label  # the label really is this image's digit

    share = solution["label"].value_counts() / (train["label"].value_counts()
                                                + solution["label"].value_counts())
    assert share.between(0.17, 0.23).all()  # stratified: every digit ~20% held out


def test_demo_is_deterministic_and_idempotent(demo: Path, tmp_path: Path) -> None:
    files = sorted(p for p in demo.rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    materialise_digits(demo)  # a complete demo is reused untouched
    assert {p: p.stat().st_mtime_ns for p in sorted(p for p in demo.rglob("*") if p.is_file())} == stamps

    again = materialise_digits(tmp_path / "digits")
    for name in ("train.csv", "sample_submission.csv", "solution.csv"):
        assert (again / name).read_bytes() == (demo / name).read_bytes()


def test_partial_demo_is_rebuilt(tmp_path: Path) -> None:
    target = tmp_path / "digits"
    (target / "train").mkdir(parents=True)
    (target / "train" / "half_written.png").write_bytes(b"")
    (target / "train.csv").write_text("id,label\n")
    materialise_digits(target)
    assert not (target / "train" / "half_written.png").exists()
    assert len(pd.read_csv(target / "train.csv")) == 1437 and (target / "solution.csv").is_file()
