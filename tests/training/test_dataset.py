"""The data path: OpenCV decoding to RGB uint8, the decoded-image cache, seeded augmentation and
loader order, and class-balanced sampling."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from imgclf.data.images import read_resized
from imgclf.paths import Paths
from imgclf.training.dataset import ImageDataset, decoded_cache, make_loader
from imgclf.training.transforms import train_transform
from tests.helpers.datasets import RED_BGR
from tests.helpers.trainkit import SIDE, class_images, loader_of, tiny_config


def _write_images(folder, n=6):
    folder.mkdir(exist_ok=True)
    images, _ = class_images(n, side=24)
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"im{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return paths


def _project(root: Path) -> Paths:
    return Paths(root=root, data_dir=root / "input" / "comp", experiment="baseline")


def test_decoded_cache_is_reused_and_invalidated_by_a_changed_file(tmp_path):
    paths = _write_images(tmp_path / "img")
    cfg, project = tiny_config(), _project(tmp_path)
    cache_dir = project.cache_dir
    first = decoded_cache(paths, SIDE, cfg, project, "train")
    assert first.shape == (6, SIDE, SIDE, 3) and first.dtype == np.uint8
    for i, path in enumerate(paths):
        assert np.array_equal(first[i], read_resized(path, SIDE))
    (cache_file,) = cache_dir.glob("*.npy")
    stamp = cache_file.stat().st_mtime_ns, cache_file.stat().st_ino

    again = decoded_cache(paths, SIDE, cfg, project, "train")  # same files: the same cache file, not rebuilt
    assert list(cache_dir.glob("*.npy")) == [cache_file]
    assert (cache_file.stat().st_mtime_ns, cache_file.stat().st_ino) == stamp
    assert np.array_equal(again, first)

    cv2.imwrite(str(paths[2]), np.full((24, 24, 3), RED_BGR, np.uint8))  # the data changes
    changed = decoded_cache(paths, SIDE, cfg, project, "train")
    assert len(list(cache_dir.glob("*.npy"))) == 2
    assert changed[2][0, 0].tolist() == [255, 0, 0]
    assert np.array_equal(np.delete(changed, 2, axis=0), np.delete(first, 2, axis=0))
    # size is part of the key
    assert decoded_cache(paths, 2 * SIDE, cfg, project, "train").shape[1] == 2 * SIDE


def test_decoded_cache_off_or_too_big(tmp_path):
    paths, project = _write_images(tmp_path / "img", n=2), _project(tmp_path)
    assert decoded_cache(paths, SIDE, tiny_config("data.cache=none"), project, "train") is None
    assert decoded_cache(paths, SIDE, tiny_config("data.cache_max_gb=0"), project, "train") is None
    assert not project.cache_dir.exists()


def _augmented(ds: ImageDataset, seed: int) -> np.ndarray:
    ds.reseed(seed)
    return np.stack([ds[i][0].numpy() for i in range(len(ds))])


def test_augmentation_is_seeded_and_differs_across_epochs():
    images, labels = class_images(8)
    cfg = tiny_config("augment.affine_p=1.0", "augment.hflip=0.5", "augment.color_jitter=0.3")
    ds = ImageDataset([f"m{i}" for i in range(8)], labels, SIDE, train_transform(cfg.augment, SIDE), images)
    epoch1, epoch2 = _augmented(ds, 101), _augmented(ds, 102)
    assert not np.array_equal(epoch1, epoch2)
    assert np.array_equal(_augmented(ds, 101), epoch1)  # same seed, same pixels (e.g. after a resume)
    assert not np.array_equal(epoch1, images)
    plain = ImageDataset([f"m{i}" for i in range(8)], labels, SIDE, None, images)
    assert np.array_equal(_augmented(plain, 5), images)


def _batches(loader) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), rows.numpy()) for x, _, rows in loader]


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_order_and_augmentation_follow_the_seed(workers):
    images, labels = class_images(32)
    cfg = tiny_config("augment.affine_p=1.0", f"train.num_workers={workers}")

    def run(seed):
        ds = ImageDataset([f"m{i}" for i in range(32)], labels, SIDE, train_transform(cfg.augment, SIDE),
                          images)
        ds.reseed(seed)
        return _batches(make_loader(ds, cfg, torch.device("cpu"), train=True, seed=seed))

    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x1, x2) and np.array_equal(r1, r2)
               for (x1, r1), (x2, r2) in zip(a, b, strict=True))
    assert not np.array_equal(np.concatenate([r for _, r in a]), np.concatenate([r for _, r in c]))
    assert sorted(np.concatenate([r for _, r in a]).tolist()) == list(range(32))  # 2 full batches of 16


def test_weighted_sampler_draws_classes_evenly():
    labels = np.array([0] * 80 + [1] * 16 + [2] * 4)
    images = np.zeros((100, 4, 4, 3), np.uint8)
    cfg = tiny_config("train.sampler=weighted", "train.batch_size=20")
    drawn = np.concatenate([labels[rows.numpy()] for seed in range(10)
                            for _, _, rows in loader_of(images, labels, cfg, seed=seed)])
    share = np.bincount(drawn, minlength=3) / len(drawn)
    assert len(drawn) == 1000 and np.allclose(share, 1 / 3, atol=0.05), share
    plain = np.concatenate([labels[r.numpy()]
                            for _, _, r in loader_of(images, labels, tiny_config("train.batch_size=20"))])
    assert np.bincount(plain, minlength=3).tolist() == [80, 16, 4]  # without it: each image once
