"""Folds side by side on CPU: the training throughput (the plan's own measurement: real optimiser
steps of the configured model at the planned side and batch, plus the augmentation) of one process
on every core, of one process on a share of them, and of several such processes measuring at the
same time. The last over the second is ``planning.hardware.CONCURRENT_EFFICIENCY``.

    python bench/fold_parallel.py [--data DIR] [--side 32] [--batch 16] [--model resnet10t] [--repeats 3]

``--data`` defaults to rot14 of ``bench/quality_sets.py``.

Run it on an idle machine: every figure is a median of ``--repeats`` measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_measurement(data: str, model: str, side: int, batch: int, threads: int) -> float:
    """Training images/s of one process on ``threads`` threads (run in a fresh interpreter)."""
    from imgclf.config.loading import load_config
    from imgclf.data.ingest import load_competition
    from imgclf.paths import Paths
    from imgclf.training.throughput import measure_images_per_s

    cfg = load_config(None, [f"data.dir={data}", f"model.name={model}", "model.pretrained=false"])
    comp = load_competition(cfg, Paths.from_config(cfg))
    return measure_images_per_s(cfg, comp, side, batch, threads)


def _start(args: argparse.Namespace, threads: int) -> subprocess.Popen:
    call = f"one_measurement({str(args.data)!r}, {args.model!r}, {args.side}, {args.batch}, {threads})"
    bench = str(REPO / "bench")
    code = f"import sys; sys.path.insert(0, {bench!r}); from fold_parallel import *; print({call})"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            text=True)


def _rates(args: argparse.Namespace, threads: int, at_once: int) -> list[float]:
    procs = [_start(args, threads) for _ in range(at_once)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO / "bench" / "results" / "quality" / "data" / "rot14",
                   help="a competition folder (default: rot14, made by bench/quality_sets.py)")
    p.add_argument("--model", default="resnet10t")
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    share = 1  # one thread per fold process: the plan's choice on machines with no more cores than folds
    alone_all, alone_share, side_by_side = [], [], []
    for _ in range(args.repeats):
        alone_all += _rates(args, cores, 1)
        alone_share += _rates(args, share, 1)
        side_by_side.append(statistics.mean(_rates(args, share, cores)))
    r_all, r_share, r_each = (statistics.median(x) for x in (alone_all, alone_share, side_by_side))
    result = {"cores": cores, "model": args.model, "side": args.side, "batch": args.batch,
              "one process, every core": round(r_all, 1), "one process, one thread": round(r_share, 1),
              f"each of {cores} one-thread processes at once": round(r_each, 1),
              "concurrent efficiency (each at once / one alone)": round(r_each / r_share, 3),
              f"{cores} processes at once / one process on every core": round(cores * r_each / r_all, 3)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
