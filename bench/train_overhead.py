"""Images/s of the pipeline's training step vs a bare PyTorch loop, same model, batch and tensors.

The pipeline side runs ``imgclf.engine.train_one_epoch`` with everything it does in a real run
(uint8 -> normalised input on the device, loss from the config, LR schedule stepped per update,
loss accumulation, progress bar); the bare side is model + cross-entropy + SGD on float tensors.
Both use SGD(momentum=0.9) so the ratio measures the pipeline's overhead, not an optimiser choice.

    python bench/train_overhead.py [--repeats 3]
"""

from __future__ import annotations

import time
from collections.abc import Callable

import timm
import torch
from _common import bare_train, float_batches, interleaved, parser, report, set_threads, uint8_batches

from imgclf.config.loading import load_config
from imgclf.models.factory import build_loss
from imgclf.training.engine import StepHooks, make_runtime, train_one_epoch
from imgclf.training.optim import LRSchedule, build_optimizer

CASES = [("resnet18", 64, 6), ("resnet10t", 32, 16),
         ("mobilenetv3_small_050", 32, 16)]  # model, side, batches
BATCH, CLASSES = 64, 10


def pipeline_side(name: str, batches: list) -> Callable[[], float]:
    cfg = load_config(None, [f"model.name={name}", "train.optimizer=sgd", "train.lr=0.01",
                             "train.weight_decay=0", f"train.batch_size={BATCH}", "device=cpu",
                             "train.warmup_epochs=0"])
    model = timm.create_model(name, num_classes=CLASSES)
    rt = make_runtime(cfg, torch.device("cpu"), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    rt.progress = True
    loss_fn = build_loss(cfg, [1] * CLASSES)
    optimizer = build_optimizer(model, cfg.train)
    schedule = LRSchedule(optimizer, cfg.train, updates_per_epoch=len(batches))
    hooks = StepHooks(after_update=schedule.after_update)
    images = BATCH * len(batches)

    def run() -> float:
        start = time.perf_counter()
        train_one_epoch(model, batches, loss_fn, optimizer, rt, hooks, desc="pipeline")
        return images / (time.perf_counter() - start)

    return run


def main() -> None:
    args = parser(__doc__).parse_args()
    threads = set_threads(args.threads)
    rows = []
    for name, side, n_batches in CASES:
        floats = float_batches(n_batches, BATCH, side, CLASSES)
        bare_model = timm.create_model(name, num_classes=CLASSES)
        result = interleaved({"pipeline": pipeline_side(name, uint8_batches(floats)),
                              "bare": lambda m=bare_model, b=floats: bare_train(m, b)}, args.repeats)
        rows.append([name, side, BATCH, result["pipeline"], result["bare"],
                     result["pipeline"] / result["bare"]])
    report("train_overhead", ["model", "px", "batch", "pipeline_img_s", "bare_img_s", "ratio"], rows,
           {"threads": threads})


if __name__ == "__main__":
    main()
