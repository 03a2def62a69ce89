"""Images/s of a real training epoch read from image files (decoded cache on, the default
augmentations, the loader the training stage builds) vs the bare PyTorch loop on in-memory float
tensors: the limit the pipeline can at best reach on this machine.

    python bench/end_to_end.py [--images 2000] [--sizes 32,64] [--model resnet10t]
"""

from __future__ import annotations

import time

import timm
import torch
from _common import bare_train, bench_paths, float_batches, interleaved, make_image_folder, parser, report

from imgclf.config.loading import load_config
from imgclf.models.factory import build_loss
from imgclf.training.dataset import ImageDataset, auto_num_workers, decoded_cache, make_loader
from imgclf.training.engine import StepHooks, make_runtime, train_one_epoch
from imgclf.training.optim import LRSchedule, build_optimizer
from imgclf.training.transforms import train_transform

BATCH, CLASSES = 64, 10


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--sizes", default="32,64")
    p.add_argument("--model", default="resnet10t")
    args = p.parse_args()
    cpu = torch.device("cpu")
    rows = []
    for side in (int(s) for s in args.sizes.split(",")):
        items = make_image_folder(args.work_dir / f"folder_{side}", args.images, side, ext=".png")
        paths, labels = [str(p) for p, _ in items], [label for _, label in items]
        cfg = load_config(None, [f"model.name={args.model}", f"data.image_size={side}",
                                 f"train.batch_size={BATCH}",
                                 "train.optimizer=sgd", "train.lr=0.01", "train.weight_decay=0", "device=cpu",
                                 "train.warmup_epochs=0"])
        cache = decoded_cache(paths, side, cfg, bench_paths(args.work_dir), "e2e")
        dataset = ImageDataset(paths, labels, side, train_transform(cfg.augment, side), images=cache)
        model = timm.create_model(args.model, num_classes=CLASSES)
        rt = make_runtime(cfg, cpu, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        loss_fn = build_loss(cfg, [1] * CLASSES)
        optimizer = build_optimizer(model, cfg.train)
        n_batches = len(paths) // BATCH
        hooks = StepHooks(after_update=LRSchedule(optimizer, cfg.train, n_batches).after_update)

        def pipeline(c=cfg, d=dataset, m=model, r=rt, lf=loss_fn, o=optimizer, h=hooks) -> float:
            start = time.perf_counter()
            loader = make_loader(d, c, cpu, train=True)
            train_one_epoch(m, loader, lf, o, r, h, desc="epoch")
            return len(loader) * BATCH / (time.perf_counter() - start)

        floats = float_batches(n_batches, BATCH, side, CLASSES)
        bare_model = timm.create_model(args.model, num_classes=CLASSES)
        result = interleaved({"pipeline": pipeline, "bare": lambda m=bare_model, b=floats: bare_train(m, b)},
                             args.repeats)
        rows.append([args.model, side, auto_num_workers(cfg, cpu, True), result["pipeline"], result["bare"],
                     result["pipeline"] / result["bare"]])
    report("end_to_end", ["model", "px", "workers", "pipeline_img_s", "bare_img_s", "ratio"], rows,
           {"images": args.images})


if __name__ == "__main__":
    main()
