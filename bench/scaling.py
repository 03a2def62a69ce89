"""Peak memory and epoch time with N vs 10N training images: memory should stay flat (images are
read through the memory-mapped decoded cache, never held as Python objects) and time should grow
linearly. Each size runs in a fresh process so peak RSS is its own.

    python bench/scaling.py [--small 2000] [--side 32] [--model resnet10t]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import bench_paths, make_image_folder, parser, report

BATCH = 64


def one_epoch(root: Path, n: int, side: int, model_name: str, work_dir: Path) -> dict:
    """Runs in the child process: cache (already built), one training epoch; returns its figures."""
    import timm
    import torch

    from imgclf.config.loading import load_config
    from imgclf.models.factory import build_loss
    from imgclf.training.dataset import ImageDataset, decoded_cache, make_loader
    from imgclf.training.engine import StepHooks, make_runtime, train_one_epoch
    from imgclf.training.optim import build_optimizer
    from imgclf.training.transforms import train_transform

    items = make_image_folder(root, n, side, ext=".png")
    paths, labels = [str(p) for p, _ in items], [label for _, label in items]
    cfg = load_config(None, [f"model.name={model_name}", f"data.image_size={side}",
                             f"train.batch_size={BATCH}", "device=cpu", "train.optimizer=sgd",
                             "train.lr=0.01"])
    cache = decoded_cache(paths, side, cfg, bench_paths(work_dir), f"scale{n}")
    dataset = ImageDataset(paths, labels, side, train_transform(cfg.augment, side), images=cache)
    model = timm.create_model(model_name, num_classes=10)
    rt = make_runtime(cfg, torch.device("cpu"), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    optimizer = build_optimizer(model, cfg.train)
    loss_fn = build_loss(cfg, [1] * 10)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    loader = make_loader(dataset, cfg, torch.device("cpu"), train=True)
    train_one_epoch(model, loader, loss_fn, optimizer, rt, StepHooks(), desc=f"{n} images")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"images": n, "epoch_s": seconds, "peak_rss_mb": peak / 1024,
            "rss_before_epoch_mb": rss_before / 1024}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--small", type=int, default=2000)
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--model", default="resnet10t")
    p.add_argument("--child", type=int, default=None, help=argparse_hidden())
    args = p.parse_args()
    if args.child is not None:
        root = args.work_dir / f"scale_{args.child}_{args.side}"
        print(json.dumps(one_epoch(root, args.child, args.side, args.model, args.work_dir)))
        return
    results = {}
    for n in (args.small, 10 * args.small):
        make_image_folder(args.work_dir / f"scale_{n}_{args.side}", n, args.side, ext=".png")
        cmd = [sys.executable, __file__, "--child", str(n), "--side", str(args.side), "--model", args.model,
               "--work-dir", str(args.work_dir)]
        subprocess.run(cmd + ["--threads", "1"], check=True,
                       capture_output=True)  # builds the cache, warms up
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[n] = json.loads(out)
    small, big = results[args.small], results[10 * args.small]
    rows = [[r["images"], r["epoch_s"], r["peak_rss_mb"]] for r in (small, big)]
    rows.append(["ratio", big["epoch_s"] / small["epoch_s"], big["peak_rss_mb"] / small["peak_rss_mb"]])
    report("scaling", ["images", "epoch_s", "peak_rss_mb"], rows, {"side": args.side, "model": args.model})


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
