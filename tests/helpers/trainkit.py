"""Helpers shared by the training tests: a learnable in-memory image set, a tiny config and a
real training loop (the package's own dataset, loader, model, loss, optimiser and engine)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from imgclf.config.loading import load_config
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.folds import make_folds
from imgclf.data.ingest import load_competition
from imgclf.models.factory import build_loss, build_model
from imgclf.paths import Paths
from imgclf.training.dataset import ImageDataset, make_loader
from imgclf.training.engine import Runtime, StepHooks, make_runtime, predict_logits, softmax, train_one_epoch
from imgclf.training.optim import build_optimizer
from tests.helpers.datasets import draw_class_image, make_kaggle_dataset
from tests.helpers.runs import FAST

SIDE = 16
LEARN = ["train.batch_size=8", "train.lr=0.003"]  # small batches: more steps per CPU second
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def class_images(n: int, n_classes: int = 3, side: int = SIDE,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` RGB uint8 images whose class (colour + shape) is learnable, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    images = np.stack([cv2.cvtColor(draw_class_image(int(k), rng, side), cv2.COLOR_BGR2RGB) for k in labels])
    return images, labels


def tiny_config(*overrides: str) -> Config:
    return load_config(None, [*FAST, f"data.image_size={SIDE}", "train.batch_size=16", *overrides])


def cpu_runtime(cfg: Config) -> Runtime:
    rt = make_runtime(cfg, torch.device("cpu"), *IMAGENET)
    rt.progress = False
    return rt


def loader_of(images: np.ndarray, labels: np.ndarray, cfg: Config, train: bool = True, seed: int = 0,
              transform=None) -> torch.utils.data.DataLoader:
    ds = ImageDataset([f"mem{i}.png" for i in range(len(labels))], labels, images.shape[1], transform, images)
    return make_loader(ds, cfg, torch.device("cpu"), train=train, seed=seed, labels_for_sampler=labels)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, cfg: Config) -> float:
    logits, rows = predict_logits(model, loader_of(images, labels, cfg, train=False), cpu_runtime(cfg))
    return float((softmax(logits).argmax(1) == labels[rows]).mean())


def fit(cfg: Config, epochs: int = 4, n: int = 96, model: nn.Module | None = None,
        hooks: StepHooks | None = None) -> dict:
    """Train on the learnable set with the config's model, loss and optimiser; per-epoch mean losses."""
    torch.manual_seed(0)
    images, labels = class_images(n, seed=1)
    model = model or build_model(cfg, 3)
    optimizer = build_optimizer(model, cfg.train)
    loss_fn = build_loss(cfg, np.bincount(labels, minlength=3))
    rt, hooks = cpu_runtime(cfg), hooks or StepHooks(clip_grad=cfg.train.clip_grad,
                                                     accum_steps=cfg.train.accum_steps)
    losses = [train_one_epoch(model, loader_of(images, labels, cfg, seed=e), loss_fn, optimizer, rt, hooks)
              for e in range(epochs)]
    return {"losses": losses, "model": model, "optimizer": optimizer, "hooks": hooks,
            "accuracy": accuracy(model, images, labels, cfg)}


def competition(tmp_path: Path, *overrides: str, n_train: int = 60, classes: tuple = ("cat", "dog", "fox"),
                side: int = SIDE) -> tuple[Config, Paths, Competition, np.ndarray]:
    """A Kaggle-layout folder with string labels, its config (outputs under tmp_path) and folds."""
    data = make_kaggle_dataset(tmp_path / "shapes", classes=classes, n_train=n_train, n_test=6, side=side)
    cfg = load_config(None, [*FAST, f"data.image_size={side}", "train.batch_size=16",
                             f"paths.root={tmp_path / 'project'}", f"data.dir={data}", *overrides])
    paths = Paths.from_config(cfg)
    comp = load_competition(cfg, paths)
    folds = make_folds(cfg, paths, comp)["fold"].to_numpy()
    return cfg, paths, comp, folds


def params_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine OpenMP
    spinning makes them several times slower; the training tests run single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
