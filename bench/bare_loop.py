"""The bare reference for bench/fast_start.py: one fold of the demo trained by a plain PyTorch
script, as a Kaggler would write it in a notebook cell. Same work as ``03_train.py --folds 0`` with
the bench's settings: resnet18 at 32 px, batch 64, 6 epochs of AdamW (lr 0.002, weight decay 0.02)
with per-step cosine decay, validation every epoch, then the validation rows predicted.

    python bench/bare_loop.py --data input/digits --folds models/digits/folds.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import timm
import torch
import torch.nn.functional as F

SIDE, BATCH, EPOCHS, LR = 32, 64, 6, 0.002


def load(data: Path, folds_csv: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    folds = pd.read_csv(folds_csv, dtype={"id": str})
    rgb = [cv2.cvtColor(cv2.imread(str(data / "train" / f"{i}.png")), cv2.COLOR_BGR2RGB) for i in folds["id"]]
    images = np.stack([cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA) for image in rgb])
    classes = sorted(folds["label"].unique())
    labels = folds["label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    return images, labels, folds["fold"].to_numpy()


def batches(x: torch.Tensor, y: torch.Tensor, shuffle: bool, generator: torch.Generator):
    order = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
    for start in range(0, len(x) - (BATCH - 1 if shuffle else 0), BATCH):
        rows = order[start:start + BATCH]
        yield x[rows], y[rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--folds", type=Path, required=True)
    args = p.parse_args()
    images, labels, folds = load(args.data, args.folds)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.45) / 0.25
    y = torch.from_numpy(labels)
    train, valid = folds != 0, folds == 0
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=int(labels.max()) + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.02)
    steps = EPOCHS * (int(train.sum()) // BATCH)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(0)
    for epoch in range(EPOCHS):
        model.train()
        for xb, yb in batches(x[train], y[train], True, generator):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.inference_mode():
            logits = torch.cat([model(xb) for xb, _ in batches(x[valid], y[valid], False, generator)])
        print(f"epoch {epoch}: valid accuracy {(logits.argmax(1) == y[valid]).float().mean():.4f}")
    probabilities = logits.softmax(1).numpy()
    print(f"predicted {len(probabilities)} validation rows")


if __name__ == "__main__":
    main()
