"""Test images/s of the pipeline's TTA inference with k views vs k x the bare forward pass.

The pipeline side is ``imgclf.engine.predict_logits`` over the loader inference builds (uint8
cached images, normalisation on the device, the views, probability averaging); the bare side is
``model(x).softmax()`` over the same float tensors, once per view.

    python bench/infer_tta.py [--images 2000] [--views identity,hflip,vflip,rot90]
"""

from __future__ import annotations

import time

import numpy as np
import timm
import torch
from _common import bare_forward, interleaved, parser, report

from imgclf.config.loading import load_config
from imgclf.training.dataset import ImageDataset, make_loader
from imgclf.training.engine import make_runtime, predict_logits


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--model", default="resnet10t")
    p.add_argument("--views", default="identity,hflip,vflip,rot90")
    args = p.parse_args()
    cpu = torch.device("cpu")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(args.images, args.side, args.side, 3), dtype=np.uint8)
    model = timm.create_model(args.model, num_classes=10).eval()
    all_views = args.views.split(",")
    rows = []
    for k in range(1, len(all_views) + 1):
        views = all_views[:k]
        cfg = load_config(None, [f"data.image_size={args.side}", "device=cpu", f"infer.tta={views}"])
        dataset = ImageDataset(["-"] * args.images, None, args.side, None, images=images)
        rt = make_runtime(cfg, cpu, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        batch = cfg.infer.batch_size
        floats = [torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float().div(64).contiguous()
                  for i in range(0, args.images, batch)]

        def pipeline(c=cfg, d=dataset, r=rt, v=views) -> float:
            start = time.perf_counter()
            predict_logits(model, make_loader(d, c, cpu, train=False), r, v, c.infer.tta_merge)
            return args.images / (time.perf_counter() - start)

        def bare(n=k, b=floats) -> float:
            return bare_forward(model, b * n) / n

        result = interleaved({"pipeline": pipeline, "bare": bare}, args.repeats)
        rows.append([args.model, args.side, k, result["pipeline"], result["bare"],
                     result["pipeline"] / result["bare"]])
    report("infer_tta", ["model", "px", "views", "pipeline_img_s", "bare_img_s_over_k", "ratio"], rows,
           {"images": args.images})


if __name__ == "__main__":
    main()
