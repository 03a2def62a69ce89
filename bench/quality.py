"""The quality benchmark: on each small real-image competition of ``quality_sets.py``, the test
score and wall time of (a) an RBF SVC on raw pixels, (b) a plain timm loop of the pipeline's model
family (30 epochs, batch 32, flips + 90 degree turns, AdamW + one-cycle, no TTA; the mean of
``--timm-seeds`` seeds) and (c) the
pipeline's defaults (``bash run_all.sh --data SET``), side by side in one run.

    python bench/quality.py [--sets binary25,rot14] [--skip svc,timm,pipeline] [--threads 1] [--set K=V]

Writes ``bench/results/quality/quality.{md,json}``. Scores are on each set's held-out test labels.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import timm
import torch
from quality_sets import make_sets
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "quality"


def read_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    table = pd.read_csv(root / ("train.csv" if split == "train" else "solution.csv"))
    images = np.stack([cv2.cvtColor(cv2.imread(str(root / split / f"{i}.png")), cv2.COLOR_BGR2RGB)
                       for i in table["id"]])
    return images, table["label"].to_numpy()


def scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(accuracy_score(truth, pred)),
            "f1_macro": float(f1_score(truth, pred, average="macro"))}


def svc(root: Path) -> dict:
    (xtr, ytr), (xte, yte) = read_split(root, "train"), read_split(root, "test")
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255  # noqa: E731
    grid = GridSearchCV(make_pipeline(StandardScaler(), SVC(kernel="rbf")),
                        {"svc__C": [1, 10, 100]}, cv=3)
    grid.fit(flat(xtr), ytr)
    return scores(yte, grid.predict(flat(xte)))


def _augment(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random h/v flips and 90-degree turns, per image."""
    out = []
    for image in batch:
        if torch.rand(1, generator=gen) < 0.5:
            image = image.flip(-1)
        if torch.rand(1, generator=gen) < 0.5:
            image = image.flip(-2)
        out.append(image.rot90(int(torch.randint(4, (1,), generator=gen)), dims=(-2, -1)))
    return torch.stack(out)


def plain_timm(root: Path, seed: int = 0, model_name: str = "resnet10t", epochs: int = 30,
               batch: int = 32) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    (xtr, ytr), (xte, yte) = read_split(root, "train"), read_split(root, "test")
    to_t = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.25)  # noqa: E731
    xtr_t, xte_t, ytr_t = to_t(xtr), to_t(xte), torch.from_numpy(ytr).long()
    model = timm.create_model(model_name, pretrained=False, num_classes=int(ytr.max()) + 1)
    steps = epochs * -(-len(xtr) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.02)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xtr_t), generator=gen)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            loss = torch.nn.functional.cross_entropy(model(_augment(xtr_t[idx], gen)), ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xte_t[i:i + 256]) for i in range(0, len(xte_t), 256)]).argmax(1).numpy()
    return scores(yte, pred)


def pipeline(root: Path, work: Path, overrides: list[str]) -> dict:
    """``bash run_all.sh --data ROOT`` with the defaults, outputs under ``work``; its submission scored."""
    sets = [a for o in overrides for a in ("--set", o)]
    cmd = ["bash", str(REPO / "run_all.sh"), "--data", str(root), "--set", f"paths.root={work}", *sets]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    (work / f"{root.name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    sub = pd.read_csv(work / "submissions" / root.name / "submission.csv")
    truth = pd.read_csv(root / "solution.csv")
    merged = truth.merge(sub, on="id", suffixes=("", "_pred"))
    result = scores(merged["label"].to_numpy(), merged["label_pred"].to_numpy())
    cv = re.findall(r"OOF[^\n]*", done.stdout + done.stderr)
    result["log"] = str(work / f"{root.name}.log")
    result["oof_lines"] = cv[-3:]
    return result


def mean_of(runs: list[dict]) -> dict:
    """The mean of several seeds' scores and times, with each seed's accuracy."""
    out = {k: float(np.mean([r[k] for r in runs])) for k in ("accuracy", "f1_macro", "seconds")}
    return {**out, "seeds": len(runs), "accuracy_per_seed": [round(r["accuracy"], 4) for r in runs]}


def timed(fn, *args) -> dict:
    start = time.perf_counter()
    result = fn(*args)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def table(results: dict) -> str:
    lines = ["| set | train/test | (a) SVC raw pixels | (b) plain timm loop, mean of seeds "
             "| (c) pipeline defaults |",
             "|---|---|---|---|---|"]
    for name, row in results.items():
        cells = []
        for side in ("svc", "timm", "pipeline"):
            r = row.get(side)
            if r is None:
                cells.append("-")
            elif "error" in r:
                cells.append(f"error: {r['error'][:60]}")
            else:
                cells.append(f"acc {r['accuracy']:.3f} / F1 {r['f1_macro']:.3f} ({r['seconds']:.0f} s)")
        lines.append(f"| {name} | {row['size']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    p.add_argument("--skip", default="", help="comma-separated sides to skip: svc,timm,pipeline")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for (c)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--timm-seeds", type=int, default=3,
                   help="seeds of the plain loop (b), averaged: one seed's test score moves by ~0.01-0.02")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="compute threads of every side (default: every core, as a user runs it; 1 when "
                        "two benchmarks share the machine, or they spin against each other)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    made = make_sets(args.out / "data", args.sets.split(",") if args.sets else None)
    results, load = {}, os.getloadavg()
    for name, root in made.items():
        n_train, n_test = (len(pd.read_csv(root / f)) for f in ("train.csv", "solution.csv"))
        row: dict = {"size": f"{n_train}/{n_test}"}
        if "svc" not in skip:
            row["svc"] = timed(svc, root)
        if "timm" not in skip:
            row["timm"] = mean_of([timed(plain_timm, root, seed) for seed in range(args.timm_seeds)])
        if "pipeline" not in skip:
            row["pipeline"] = timed(pipeline, root, args.out / "work", args.overrides)
        results[name] = row
        print(name, json.dumps(row), flush=True)
    text = (f"load average at start: {load[0]:.2f}, at end: {os.getloadavg()[0]:.2f}; "
            f"{os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}\n\n{table(results)}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.md").write_text(text)
    (args.out / "quality.json").write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
