"""Issue 16's figures: does a pseudo-label student beat its teacher when the test images carry signal
the small train set lacks, and how close (and how much faster) is a distilled smaller student?

    python bench/pseudo_gain.py [--seeds 0,1] [--epochs 80] [--folds 4] [--modes hard,soft]
                                [--big resnet18] [--small resnet10t] [--skip-distill] [--second-round]
                                [--control] [--keep] [--threads 1]

The fixture (``places<N>``, Kaggle CSV layout with ``solution.csv``) is cut from the real photos of
``quality_sets.py`` (no download): N classes of 24 px grayscale crops around N places of four images,
each turned by a random multiple of 90 degrees (like ``rot14``, balanced), with few train images per
class and ``--test-ratio`` times as many test images from the same places.

Every stage runs as the real script, outputs under ``bench/results/pseudo/work/seed<S>``
(``--set paths.root=...``), with ``budget=null`` and the same explicit training settings for teacher
and students (the student inherits its teacher's saved config; only ``pseudo.overrides`` differ):
``01_eda``, ``02_folds``, ``03_train`` (teacher, ``model.name=--small``), ``05_infer``,
``05b_pseudo`` (``pseudo.mode=hard``, then ``soft``), ``06_ensemble`` with and without the student
(``ensemble.experiments=[...]``). Every student passes over its fold's train images as its teacher
did, in as many optimiser steps, each batch carrying as many pseudo-labelled test images
(``pseudo.schedule: mixed``, the default; ``--set pseudo.schedule=steps`` for the older schedule);
``--control`` trains the teacher for twice its epochs, as many images as such a student sees; then
``03_train``
of ``--big``, ``05_infer``, ``05b_pseudo`` ``pseudo.mode=distill`` with
``pseudo.overrides={model.name: --small}`` (first seed only). Reported: each experiment's
pooled OOF score (``cv.json``, and with TTA from ``infer.json``), the ensembles' OOF (``ensemble.json``
honest score of the chosen method and the plain mean), and every submission scored on
``solution.csv`` (accuracy, macro-F1); inference throughput of ``--big`` and ``--small`` measured
here on the test images, one thread, interleaved, median of ``--repeats``.

Writes ``bench/results/pseudo/pseudo_gain.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch
from quality_sets import _around, _places, sources, write_set
from sklearn.metrics import accuracy_score, f1_score

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "pseudo"


def places_set(root: Path, seed: int, classes: int, train_per_class: int, test_ratio: int, side: int) -> Path:
    """``classes`` places of four real images; per class ``train_per_class`` train and
    ``test_ratio`` times as many test crops (24 px grayscale, jittered, random 90 degree turns)."""
    src = sources()
    rng = np.random.default_rng(1000 + seed)
    per_image = -(-classes // 4)
    places = _places(src, ["china", "flower", "grace", "mri"], per_image, rng)[:classes]
    n = train_per_class * (1 + test_ratio)
    images, labels = [], []
    for label, place in enumerate(places):
        for _ in range(n):
            image = _around(src, place, rng, 56, side, gray=True)
            images.append(np.ascontiguousarray(np.rot90(image, int(rng.integers(4)))))
            labels.append(label)
    return write_set(root, images, labels, test_ratio / (1 + test_ratio), seed=seed)


def scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(accuracy_score(truth, pred)),
            "f1_macro": float(f1_score(truth, pred, average="macro"))}


class Runner:
    """The pipeline's scripts, one subprocess each, on one thread; every log kept."""

    def __init__(self, data: Path, work: Path, common: list[str]):
        self.data, self.work, self.common, self.n = data, work, common, 0
        self.paths_comp = work / "models" / data.name
        self.log = work / "stages.log"

    def __call__(self, script: str, *overrides: str, extra: tuple[str, ...] = ()) -> str:
        sets = [a for o in (*self.common, *overrides) for a in ("--set", o)]
        cmd = [sys.executable, str(REPO / "pipelines" / script), "--data", str(self.data), *sets, *extra]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
        seconds = time.perf_counter() - start
        self.n += 1
        with self.log.open("a") as f:
            f.write(f"\n===== [{self.n}] {' '.join(cmd[1:])} ({seconds:.0f} s, rc {done.returncode})\n")
            f.write(done.stdout + done.stderr)
        print(f"  {script} {' '.join(overrides)}: {seconds:.0f} s", flush=True)
        if done.returncode != 0:
            raise RuntimeError(f"{script} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]} "
                               f"(log: {self.log})")
        return done.stdout + done.stderr

    def experiment(self, name: str) -> dict:
        """Pooled OOF (cv.json), with TTA (infer.json), and test.csv's argmax scored on solution.csv."""
        exp = self.paths_comp / name
        metric = "accuracy"
        cv = json.loads((exp / "cv.json").read_text())["pooled"]
        tta = json.loads((exp / "infer.json").read_text())["tta"]
        test = pd.read_csv(exp / "test.csv", dtype={"id": str})
        return {"oof": cv.get(metric), "oof_f1": cv.get("f1_macro"), "oof_tta": tta.get("oof_tta"),
                "tta_views": tta.get("views"), "test": self.score_probs(test)}

    def score_probs(self, table: pd.DataFrame) -> dict:
        truth = pd.read_csv(self.data / "solution.csv", dtype={"id": str})
        merged = truth.merge(table, on="id")
        classes = [c for c in table.columns if c != "id"]
        pred = np.asarray(classes)[merged[classes].to_numpy().argmax(axis=1)].astype(int)
        return scores(merged["label"].to_numpy(), pred)

    def ensemble(self, experiments: list[str]) -> dict:
        self("06_ensemble.py", f"ensemble.experiments=[{','.join(experiments)}]")
        comp = self.paths_comp / "ensemble"
        summary = json.loads((comp / "ensemble.json").read_text())
        table = pd.read_csv(comp / "scores.csv").set_index("method")
        sub = pd.read_csv(summary["submission"], dtype={"id": str})
        truth = pd.read_csv(self.data / "solution.csv", dtype={"id": str})
        merged = truth.merge(sub, on="id", suffixes=("", "_pred"))
        return {"experiments": experiments, "method": summary["method"], "oof": summary["honest_oof_score"],
                "oof_mean": float(table.loc["soft", "accuracy"]),
                "test": scores(merged["label"].to_numpy(), merged["label_pred"].to_numpy())}


def throughput(names: list[str], images: np.ndarray, classes: int, repeats: int) -> dict[str, float]:
    """Images per second of each model's forward pass on ``images`` (batch 256, eval, one thread),
    the models interleaved in each repeat; the median of ``repeats``."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    models = {n: timm.create_model(n, pretrained=False, num_classes=classes).eval() for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.inference_mode():
        for model in models.values():  # warm-up
            model(x[:256])
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                for i in range(0, len(x), 256):
                    model(x[i:i + 256])
                times[name].append(time.perf_counter() - start)
    return {n: round(len(x) / float(np.median(t)), 1) for n, t in times.items()}


def pseudo_label_accuracy(run: Runner, student: str, folds: int) -> list[dict]:
    """Per fold: the share of right pseudo-labels among the selected test images, and the fold
    teacher's accuracy on every test image (targets from teacher_targets.npz, rows selected as the
    stage does; solution.csv read here only)."""
    import yaml

    from imgclf.config.sections import PseudoConfig
    from imgclf.pseudo.targets import probabilities_at, select_rows

    ids = pd.read_csv(run.data / "sample_submission.csv", dtype={"id": str})["id"]
    truth = pd.read_csv(run.data / "solution.csv", dtype={"id": str}).set_index("id").loc[ids, "label"]
    saved = yaml.safe_load((run.paths_comp / student / "config.yaml").read_text())
    pc = PseudoConfig.model_validate(saved["pseudo"])
    out = []
    for k in range(folds):
        with np.load(run.paths_comp / student / f"fold{k}" / "teacher_targets.npz") as npz:
            probs = probabilities_at(npz["test"], 1.0, False)
        rows = select_rows(probs, pc, False)
        pred = probs.argmax(axis=1)
        right = pred == truth.to_numpy()
        out.append({"selected": int(len(rows)), "selected_right": float(right[rows].mean()),
                    "all_right": float(right.mean())})
    return out


def student(run: Runner, exps: dict, logs: dict, teacher: str, mode: str, name: str, folds: int,
            *overrides: str) -> None:
    """05b_pseudo.py: the student ``name`` of ``teacher``; its figures into ``exps``."""
    logs[name] = run("05b_pseudo.py", "pseudo.enabled=true", f"pseudo.mode={mode}",
                     f"pseudo.teacher=[{teacher}]", f"pseudo.student={name}", *overrides)
    exps[name] = run.experiment(name)
    if mode != "distill":
        exps[name]["selection"] = [json.loads((run.paths_comp / name / f"fold{k}" / "teacher.json")
                                              .read_text())["selection"] for k in range(folds)]
        exps[name]["pseudo_labels"] = pseudo_label_accuracy(run, name, folds)


def second_round(run: Runner, exps: dict, logs: dict, ens: dict, teacher: str,
                 args: argparse.Namespace) -> None:
    """The hard student started from its fold's teacher (``pseudo.init=teacher``, step-matched: a
    second round of the teacher's length), and its control: the teacher's recipe trained for both
    rounds' steps from scratch, without pseudo-labels."""
    name = f"{teacher}_hard_r2"
    student(run, exps, logs, teacher, "hard", name, args.folds, "pseudo.init=teacher")
    ens["with_hard_r2"] = run.ensemble([teacher, name])
    twice_as_long(run, exps, teacher, args)


def twice_as_long(run: Runner, exps: dict, teacher: str, args: argparse.Namespace) -> None:
    """The control: the teacher's recipe for twice its epochs, no pseudo-labels (a second round's
    steps; a mixed student's images, each step of which carries twice the teacher's)."""
    control = f"{teacher}_2x"
    if control in exps:
        return
    run("03_train.py", f"experiment={control}", f"model.name={args.small}", f"train.epochs={2 * args.epochs}")
    run("05_infer.py", f"ensemble.experiments=[{control}]")
    exps[control] = run.experiment(control)


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    root = args.out / "data" / f"places{args.classes}_s{seed}"
    work = args.out / "work" / f"seed{seed}"
    if not (args.keep and (root / "solution.csv").is_file()):  # --keep: the same fixture (same seed) kept
        places_set(root, seed, args.classes, args.train_per_class, args.test_ratio, args.side)
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    data = root
    common = [f"paths.root={work}", "budget=null", f"seed={seed}", f"folds.seed={seed}",
              f"folds.n_splits={args.folds}", f"train.epochs={args.epochs}", f"train.batch_size={args.batch}",
              "train.warmup_epochs=1", f"data.image_size={args.side}", "model.pretrained=false",
              "train.num_workers=0", "track.backends=[]", *args.overrides]
    run = Runner(data, work, common)
    result: dict = {"seed": seed, "data": str(data), "train": len(pd.read_csv(data / "train.csv")),
                    "test": len(pd.read_csv(data / "solution.csv"))}
    t0 = time.perf_counter()
    run("01_eda.py")
    run("02_folds.py")
    teacher = "teacher"
    run("03_train.py", f"experiment={teacher}", f"model.name={args.small}")
    exps: dict = {}
    logs: dict = {}
    run("05_infer.py")
    exps[teacher] = run.experiment(teacher)
    for mode in args.modes:  # pseudo.schedule=steps (the default): as many optimiser steps as the teacher
        student(run, exps, logs, teacher, mode, f"{teacher}_{mode}", args.folds)
    ens = {"without": run.ensemble([teacher])}
    for mode in args.modes:
        ens[f"with_{mode}"] = run.ensemble([teacher, f"{teacher}_{mode}"])
    if args.second_round:
        second_round(run, exps, logs, ens, teacher, args)
    if args.control:
        twice_as_long(run, exps, teacher, args)
    result["pseudo_seconds"] = round(time.perf_counter() - t0, 1)
    if not args.skip_distill and seed == int(args.seeds.split(",")[0]):  # the first seed only
        t1 = time.perf_counter()
        big = "big"
        run("03_train.py", f"experiment={big}", f"model.name={args.big}")
        run("05_infer.py", f"ensemble.experiments=[{big}]")
        student(run, exps, logs, big, "distill", f"{big}_distill", args.folds,
                f"pseudo.overrides={{model.name: {args.small}}}")
        exps[big] = run.experiment(big)
        saved = (run.paths_comp / f"{big}_distill" / "config.yaml").read_text()
        assert f"name: {args.small}" in saved, "the distilled student is not the small model"
        result["distill_seconds"] = round(time.perf_counter() - t1, 1)
        test_images = np.stack([_read(data / "test" / f"{i}.png")
                                for i in pd.read_csv(data / "solution.csv", dtype={"id": str})["id"]])
        result["images_per_s"] = throughput([args.big, args.small], test_images, args.classes, args.repeats)
    result["experiments"], result["ensembles"] = exps, ens
    result["pseudo_log_lines"] = {m: [line for line in text.splitlines() if "pseudo" in line.lower()][:12]
                                  for m, text in logs.items()}
    return result


def _read(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    lines = ["| seed | model | OOF acc | OOF acc, TTA | test acc / macro-F1 | test images used | "
             "their pseudo-labels right (all test images) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        for name, e in r["experiments"].items():
            sel, right = e.get("selection"), e.get("pseudo_labels")
            used = "-" if sel is None else f"{np.mean([s['selected'] for s in sel]):.0f} per fold"
            share = "-" if right is None else (f"{np.mean([x['selected_right'] for x in right]):.3f} "
                                               f"({np.mean([x['all_right'] for x in right]):.3f})")
            lines.append(f"| {r['seed']} | {name} | {_f(e['oof'])} | {_f(e['oof_tta'])} | "
                         f"{_f(e['test']['accuracy'])} / {_f(e['test']['f1_macro'])} | {used} | {share} |")
    lines += ["", "| seed | ensemble | method | OOF acc (honest) | OOF acc, mean | test acc / macro-F1 |",
              "|---|---|---|---|---|---|"]
    for r in results:
        for name, e in r["ensembles"].items():
            lines.append(f"| {r['seed']} | {name}: {' + '.join(e['experiments'])} | {e['method']} | "
                         f"{_f(e['oof'])} | {_f(e['oof_mean'])} | "
                         f"{_f(e['test']['accuracy'])} / {_f(e['test']['f1_macro'])} |")
    if any("images_per_s" in r for r in results):
        lines += ["", f"| seed | distillation | teacher {args.big} OOF | student {args.small} OOF | "
                      f"{args.small} alone OOF | images/s {args.big} | images/s {args.small} | speed-up |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in results:
            if "images_per_s" not in r:
                continue
            e, ips = r["experiments"], r["images_per_s"]
            lines.append(f"| {r['seed']} | big -> big_distill | "
                         f"{_f(e['big']['oof'])} (TTA {_f(e['big']['oof_tta'])}) | "
                         f"{_f(e['big_distill']['oof'])} (TTA {_f(e['big_distill']['oof_tta'])}) | "
                         f"{_f(e['teacher']['oof'])} | {ips[args.big]:.0f} | {ips[args.small]:.0f} | "
                         f"{ips[args.small] / ips[args.big]:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0", help="comma-separated seeds (fixture, folds and training)")
    p.add_argument("--classes", type=int, default=12)
    p.add_argument("--train-per-class", type=int, default=18)
    p.add_argument("--test-ratio", type=int, default=5, help="test images per train image")
    p.add_argument("--side", type=int, default=24)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=80,
                   help="the teachers' epochs (80 x 5 steps: 20 left the resnet10t teacher undertrained)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--modes", default="hard,soft", help="pseudo-label students: hard,soft")
    p.add_argument("--big", default="resnet18", help="the distillation teacher")
    p.add_argument("--small", default="resnet10t", help="the pseudo-label teacher and the distilled student")
    p.add_argument("--skip-distill", action="store_true")
    p.add_argument("--control", action="store_true",
                   help="also train the teacher for twice its epochs (the control for a mixed student's "
                        "extra compute)")
    p.add_argument("--second-round", action="store_true",
                   help="also a hard student started from its fold's teacher (pseudo.init=teacher) and "
                        "a teacher trained for both rounds' steps (the control)")
    p.add_argument("--keep", action="store_true",
                   help="keep an existing fixture and work dir: the stages skip what they finished")
    p.add_argument("--repeats", type=int, default=7, help="throughput repeats (median)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="extra override of every stage")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    results = []
    for seed in map(int, args.seeds.split(",")):
        print(f"seed {seed}", flush=True)
        results.append(run_seed(args, seed))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pseudo_gain.json").write_text(json.dumps(results, indent=1))
    r0 = results[0]
    text = (f"fixture places{args.classes}: {r0['train']} train / {r0['test']} test images, {args.side} px, "
            f"{args.folds} folds, {args.epochs} epochs, batch {args.batch}, budget=null; "
            f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; "
            f"torch threads {torch.get_num_threads()}; "
            + "; ".join(f"seed {r['seed']}: pseudo {r['pseudo_seconds']:.0f} s"
                        + (f", distill {r['distill_seconds']:.0f} s" if "distill_seconds" in r else "")
                        for r in results)
            + f"\n\n{markdown(results, args)}\n")
    (args.out / "pseudo_gain.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
