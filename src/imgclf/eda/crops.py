"""The EDA's view of ``data.crop``: a grid of images beside their crops, and how many images fell
back to the centre crop (no face found, no box), so a user sees what the model will see."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from imgclf.config.schema import Config
from imgclf.data.boxes import competition_crop
from imgclf.data.competition import Competition
from imgclf.data.crop import CropPlan
from imgclf.data.images import read_cropped, read_image, resize_square
from imgclf.errors import DataError
from imgclf.reporting.figures import plt, save_figure

MAX_CHECKED = 2000  # fallbacks are counted on all images up to this many, else on a random sample
GRID_IMAGES = 12
PREVIEW_SIDE = 96


def crop_summary(cfg: Config, comp: Competition, target: Path) -> dict | None:
    """None when ``data.crop`` is none; otherwise the fallback count and the preview grid's file."""
    plan = competition_crop(cfg.data, comp)
    if not plan.active:
        return None
    files = pd.concat([comp.train["path"], comp.test["path"]], ignore_index=True).astype(str).to_numpy()
    rng = np.random.default_rng(cfg.seed)
    checked = files if len(files) <= MAX_CHECKED else rng.choice(files, MAX_CHECKED, replace=False)
    side = cfg.data.image_size or PREVIEW_SIDE
    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
        fell_back = list(tqdm(pool.map(lambda p: _fell_back(p, side, plan), checked), total=len(checked),
                              desc=f"crop {plan.mode}", unit="img", mininterval=1.0, leave=False))
    grid = list(rng.choice(comp.train["path"].astype(str).to_numpy(),
                           min(GRID_IMAGES, len(comp.train)), replace=False))
    plot_crop_grid(grid, plan, target)
    return {"mode": plan.mode, "fraction": plan.fraction, "margin": plan.margin,
            "checked": len(checked), "of": len(files), "fell_back": int(sum(fell_back)),
            "figure": target.name}


def _fell_back(path: str, side: int, plan: CropPlan) -> bool:
    try:
        return read_cropped(path, side, plan)[1]
    except DataError:
        return False  # an unreadable file is reported by the scan, not here


def plot_crop_grid(files: list[str], plan: CropPlan, target: Path) -> None:
    """Pairs of thumbnails: the image as decoded, then its crop (titled when it fell back)."""
    columns = 6
    rows = -(-2 * len(files) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, path in enumerate(files):
        try:
            whole = read_image(path, min_side=PREVIEW_SIDE)
            crop, fell_back = read_cropped(path, PREVIEW_SIDE, plan)
        except DataError:
            continue
        left, right = axes.flat[2 * i], axes.flat[2 * i + 1]
        left.imshow(whole)
        left.set_title(Path(path).name[:14], fontsize=7)
        right.imshow(resize_square(crop, PREVIEW_SIDE))
        right.set_title("centre (fallback)" if fell_back else plan.mode, fontsize=7,
                        color="tab:red" if fell_back else "black")
    fig.suptitle(f"data.crop={plan.mode}: image, then what the model sees", fontsize=9)
    fig.tight_layout()
    save_figure(fig, target)
