"""The data path: OpenCV decoding to RGB uint8, the decoded-image cache, seeded augmentation and
loader order, and class-balanced sampling."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from trainkit import SIDE, class_images, loader_of, tiny_config

from imgclf.dataset import ImageDataset, decoded_cache, make_loader
from imgclf.errors import DataError
from imgclf.images import read_image, read_resized
from imgclf.transforms import train_transform

RED_BGR = (0, 0, 255)


def test_pure_red_decodes_in_rgb_order(tmp_path):
    for ext in (".png", ".jpg", ".bmp"):
        path = tmp_path / f"red{ext}"
        cv2.imwrite(str(path), np.full((8, 8, 3), RED_BGR, np.uint8))
        image = read_image(path)
        assert image.shape == (8, 8, 3) and image.dtype == np.uint8
        assert np.abs(image[4, 4].astype(int) - [255, 0, 0]).max() <= 2, ext  # jpg is lossy
    item, label, row = ImageDataset([tmp_path / "red.png"], np.array([1]), 8)[0]
    assert item.dtype == torch.uint8 and item.shape == (8, 8, 3) and item[0, 0].tolist() == [255, 0, 0]
    assert (label, row) == (1, 0)


def test_grayscale_rgba_and_16_bit_become_rgb_uint8(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., :3], bgra[..., 3] = RED_BGR, 128
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    cv2.imwrite(str(tmp_path / "gray16.png"), np.full((8, 8), 100 * 256 + 7, np.uint16))
    bgr16 = np.zeros((8, 8, 3), np.uint16)
    bgr16[..., 2] = 65535  # red at full 16-bit scale
    cv2.imwrite(str(tmp_path / "red16.png"), bgr16)
    Image.fromarray(np.dstack([gray, np.full_like(gray, 200)]), "LA").save(tmp_path / "gray_alpha.png")

    decoded = {name: read_image(tmp_path / f"{name}.png") for name in ("gray", "rgba", "gray16", "red16", "gray_alpha")}
    for name, image in decoded.items():
        assert image.shape == (8, 8, 3) and image.dtype == np.uint8, name
    assert np.array_equal(decoded["gray"], np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(decoded["gray_alpha"], decoded["gray"])
    assert decoded["rgba"][0, 0].tolist() == [255, 0, 0]  # alpha dropped, channels in RGB order
    assert np.all(decoded["gray16"] == 100)  # the high byte
    assert decoded["red16"][0, 0].tolist() == [255, 0, 0]


def test_unreadable_images_are_data_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(DataError, match="cannot decode.*junk.jpg"):
        read_image(tmp_path / "junk.jpg")
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "gone.png")


def test_read_resized_gives_the_square_side(tmp_path):
    cv2.imwrite(str(tmp_path / "wide.png"), np.zeros((20, 40, 3), np.uint8))
    assert read_resized(tmp_path / "wide.png", 16).shape == (16, 16, 3)
    assert read_resized(tmp_path / "wide.png", 64).shape == (64, 64, 3)


def _write_images(folder, n=6):
    folder.mkdir(exist_ok=True)
    images, _ = class_images(n, side=24)
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"im{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return paths


def test_decoded_cache_is_reused_and_invalidated_by_a_changed_file(tmp_path):
    paths = _write_images(tmp_path / "img")
    cfg, cache_dir = tiny_config(), tmp_path / "cache"
    first = decoded_cache(paths, SIDE, cfg, cache_dir, "train")
    assert first.shape == (6, SIDE, SIDE, 3) and first.dtype == np.uint8
    for i, path in enumerate(paths):
        assert np.array_equal(first[i], read_resized(path, SIDE))
    (cache_file,) = cache_dir.glob("*.npy")
    stamp = cache_file.stat().st_mtime_ns, cache_file.stat().st_ino

    again = decoded_cache(paths, SIDE, cfg, cache_dir, "train")  # same files: the same cache file, not rebuilt
    assert list(cache_dir.glob("*.npy")) == [cache_file]
    assert (cache_file.stat().st_mtime_ns, cache_file.stat().st_ino) == stamp
    assert np.array_equal(again, first)

    cv2.imwrite(str(paths[2]), np.full((24, 24, 3), RED_BGR, np.uint8))  # the data changes
    changed = decoded_cache(paths, SIDE, cfg, cache_dir, "train")
    assert len(list(cache_dir.glob("*.npy"))) == 2
    assert changed[2][0, 0].tolist() == [255, 0, 0]
    assert np.array_equal(np.delete(changed, 2, axis=0), np.delete(first, 2, axis=0))
    assert decoded_cache(paths, 2 * SIDE, cfg, cache_dir, "train").shape[1] == 2 * SIDE  # size is part of the key


def test_decoded_cache_off_or_too_big(tmp_path):
    paths = _write_images(tmp_path / "img", n=2)
    assert decoded_cache(paths, SIDE, tiny_config("data.cache=none"), tmp_path / "c", "train") is None
    assert decoded_cache(paths, SIDE, tiny_config("data.cache_max_gb=0"), tmp_path / "c", "train") is None
    assert not (tmp_path / "c").exists()


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
        ds = ImageDataset([f"m{i}" for i in range(32)], labels, SIDE, train_transform(cfg.augment, SIDE), images)
        ds.reseed(seed)
        return _batches(make_loader(ds, cfg, torch.device("cpu"), train=True, seed=seed))

    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x1, x2) and np.array_equal(r1, r2) for (x1, r1), (x2, r2) in zip(a, b, strict=True))
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
    plain = np.concatenate([labels[r.numpy()] for _, _, r in loader_of(images, labels, tiny_config("train.batch_size=20"))])
    assert np.bincount(plain, minlength=3).tolist() == [80, 16, 4]  # without it: each image once
