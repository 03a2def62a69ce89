"""Shared pieces of the benchmarks: tiny real image folders, the bare PyTorch baselines, timing
and reporting. Benchmarks compare ratios measured in one run (absolute times on shared machines
are noisy); runs of the two sides are interleaved and the median of each is kept."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from imgclf.paths import Paths

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def bench_paths(work_dir: Path) -> Paths:
    """The project layout under the benchmark's work folder (the decoded cache lives there)."""
    return Paths(root=work_dir, data_dir=work_dir / "input" / "bench", experiment="bench")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved repetitions of each side (median kept)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--work-dir", type=Path, default=RESULTS_DIR / "work", help="where generated images go")
    return p


def set_threads(threads: int | None) -> int:
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def make_image_folder(root: Path, n: int, side: int, classes: int = 10, ext: str = ".jpg",
                      seed: int = 0) -> list[tuple[Path, int]]:
    """``root/<class>/<i>.<ext>``: noisy images with a class-dependent blob (reused if complete)."""
    marker = root / f".complete_{n}_{side}_{classes}{ext}"
    rng = np.random.default_rng(seed)
    items = [(root / f"c{i % classes}" / f"{i:06d}{ext}", i % classes) for i in range(n)]
    if marker.is_file():
        return items
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
    for path, label in items:
        image = rng.integers(0, 80, size=(side, side, 3), dtype=np.uint8)
        centre = (side // 2, side // 2)
        cv2.circle(image, centre, side // 4, (25 * label, 255 - 20 * label, 120), -1)
        cv2.imwrite(str(path), image)
    marker.touch()
    return items


def bare_train(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """The reference: model, cross-entropy, SGD, nothing else. Returns images/s."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    start = time.perf_counter()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return sum(len(y) for _, y in batches) / (time.perf_counter() - start)


@torch.inference_mode()
def bare_forward(model: torch.nn.Module, batches: list[torch.Tensor]) -> float:
    model.eval()
    start = time.perf_counter()
    for x in batches:
        model(x).softmax(-1)
    return sum(len(x) for x in batches) / (time.perf_counter() - start)


def float_batches(n_batches: int, batch: int, side: int, classes: int = 10,
                  seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, side, side, generator=g), torch.randint(0, classes, (batch,), generator=g))
            for _ in range(n_batches)]


def uint8_batches(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor,
                                                                                    torch.Tensor]]:
    """The same batches as the pipeline's loader yields them: uint8 NHWC, labels, row ids."""
    out, row = [], 0
    for x, y in batches:
        images = (x.permute(0, 2, 3, 1) * 40 + 128).clamp(0, 255).to(torch.uint8)
        out.append((images, y, torch.arange(row, row + len(y))))
        row += len(y)
    return out


def interleaved(sides: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Run every side once per round (after one warm-up round); median images/s per side."""
    for fn in sides.values():
        fn()
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            runs[name].append(fn())
    return {name: statistics.median(values) for name, values in runs.items()}


def report(name: str, header: list[str], rows: list[list], extra: dict | None = None) -> None:
    """Print a table and append one JSON line per row to bench/results/<name>.jsonl."""
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(_fmt(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    meta = {"bench": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
            "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "argv": sys.argv[1:], **(extra or {})}
    with open(RESULTS_DIR / f"{name}.jsonl", "a") as handle:
        for row in rows:
            handle.write(json.dumps({**meta, **dict(zip(header, row, strict=True))}) + "\n")


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
