"""Images/s of the pipeline's Dataset + DataLoader (decode, resize, augment, collate) from real
JPEG files, with and without the decoded-image cache, vs torchvision's ImageFolder + transforms
doing the same work (resize, random affine with p=0.5, to uint8 tensor) with the same workers.

    python bench/data_path.py [--images 1000] [--workers 2] [--sizes 32,64,128,224]
"""

from __future__ import annotations

import time

import torch
from _common import bench_paths, interleaved, make_image_folder, parser, report
from torchvision import datasets
from torchvision.transforms import v2

from imgclf.config.loading import load_config
from imgclf.training.dataset import ImageDataset, decoded_cache, make_loader
from imgclf.training.transforms import train_transform

SOURCE_SIDE = 256
BATCH = 64


def drain(loader: torch.utils.data.DataLoader) -> float:
    start, seen = time.perf_counter(), 0
    for batch in loader:
        seen += len(batch[0])
    return seen / (time.perf_counter() - start)


def torchvision_loader(root, side: int, workers: int, aug) -> torch.utils.data.DataLoader:
    transform = v2.Compose([
        v2.PILToTensor(), v2.Resize((side, side), antialias=True),
        v2.RandomApply([v2.RandomAffine(degrees=aug.rotate_limit, translate=(aug.shift_limit,) * 2,
                                        scale=(1 - aug.scale_limit, 1 + aug.scale_limit))], p=aug.affine_p)])
    dataset = datasets.ImageFolder(str(root), transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                                       drop_last=True)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sizes", default="32,64,128,224")
    args = p.parse_args()
    root = args.work_dir / f"folder_{SOURCE_SIDE}"
    items = make_image_folder(root, args.images, SOURCE_SIDE)
    paths, labels = [str(p) for p, _ in items], [label for _, label in items]
    cpu = torch.device("cpu")
    rows = []
    for side in (int(s) for s in args.sizes.split(",")):
        cfg = load_config(None, [f"data.image_size={side}", f"train.batch_size={BATCH}",
                                 f"train.num_workers={args.workers}", "device=cpu", "data.cache=ram",
                                 "data.cache_max_gb=8"])
        cache = decoded_cache(paths, side, cfg, bench_paths(args.work_dir), "bench")
        plain = ImageDataset(paths, labels, side, train_transform(cfg.augment, side))
        cached = ImageDataset(paths, labels, side, train_transform(cfg.augment, side), images=cache)
        result = interleaved({
            "pipeline": lambda d=plain, c=cfg: drain(make_loader(d, c, cpu, train=True)),
            "pipeline_cached": lambda d=cached, c=cfg: drain(make_loader(d, c, cpu, train=True)),
            "torchvision": lambda s=side, c=cfg: drain(torchvision_loader(root, s, args.workers, c.augment)),
        }, args.repeats)
        rows.append([side, args.workers, result["pipeline"], result["pipeline_cached"], result["torchvision"],
                     result["pipeline"] / result["torchvision"],
                     result["pipeline_cached"] / result["torchvision"]])
    report("data_path", ["px", "workers", "pipeline_img_s", "cached_img_s", "torchvision_img_s",
                         "ratio_nocache", "ratio_cached"], rows, {"images": args.images})


if __name__ == "__main__":
    main()
