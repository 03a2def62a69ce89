"""Whole-process cost of the training stage on the demo: a finished rerun, and one fold against a
bare loop doing the same training.

1. ``03_train.py`` when every fold is finished (wall time of the whole process, median of runs;
   the folds are trained for one epoch first, since a rerun's cost does not depend on the epochs).
2. ``bare ÷ pipeline``: the whole-process time of a bare PyTorch script (read the images, build
   resnet18, 6 epochs of AdamW with a cosine schedule on fold 0's training rows at 32 px, batch 64,
   validate each epoch, predict the validation rows) divided by that of
   ``03_train.py --folds 0`` with the same settings (which also checks its inputs, caches the decoded
   images, writes checkpoints, logs and OOF files). 1.0 means the pipeline costs nothing extra.
   Runs alternate (pipeline, bare, pipeline, bare, ...) and each side keeps its median.

``--repo DIR`` measures another checkout (e.g. ``git worktree add /tmp/base <commit>`` with its own
venv) for a before/after comparison; the demo data and folds.csv are made there first.

    python bench/fast_start.py [--repeats 3] [--repo DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import BENCH_DIR, RESULTS_DIR, report

SETTINGS = ["model.name=resnet18", "data.image_size=32", "train.batch_size=64", "train.epochs=6",
            "device=cpu", "infer.tta=[identity]"]
BARE = BENCH_DIR / "bare_loop.py"


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--repo", type=Path, default=BENCH_DIR.parent)
    args = p.parse_args()
    repo = args.repo.resolve()
    python = str(repo / ".venv" / "bin" / "python")
    root = RESULTS_DIR / "work" / f"fast_start_{repo.name}"
    shutil.rmtree(root, ignore_errors=True)
    base = [*_sets([f"paths.root={root}", *SETTINGS])]
    timed([python, "pipelines/02_folds.py", *base], repo)
    quick = [*base, *_sets(["train.epochs=1", "experiment=rerun"])]  # what a rerun costs does not
    timed([python, "pipelines/03_train.py", *quick], repo)  # depend on the epochs: every fold, once
    rerun = [timed([python, "pipelines/03_train.py", *quick], repo) for _ in range(args.repeats)]

    pipeline, bare = [], []
    folds_csv = root / "models" / "digits" / "folds.csv"
    for i in range(args.repeats):
        pipeline.append(timed([python, "pipelines/03_train.py", "--folds", "0",
                               *_sets([f"experiment=fold0_{i}"]), *base], repo))
        bare.append(timed([python, str(BARE), "--data", str(root / "input" / "digits"),
                           "--folds", str(folds_csv)], repo))
    rows = [[repo.name, "03_train.py, every fold finished", statistics.median(rerun), "", ""],
            [repo.name, "03_train.py --folds 0 vs bare loop", statistics.median(pipeline),
             statistics.median(bare), statistics.median(bare) / statistics.median(pipeline)]]
    report("fast_start", ["checkout", "case", "pipeline_s", "bare_s", "bare_over_pipeline"], rows,
           {"repeats": args.repeats, "python": sys.version.split()[0]})


if __name__ == "__main__":
    main()
