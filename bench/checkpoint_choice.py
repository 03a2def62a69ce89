"""Best-epoch against last-epoch checkpoints, paired on the same finished runs.

Every fold keeps both ``best.pt`` (the epoch that validated best) and ``last.pt`` (the final epoch,
with its EMA). This bench infers each finished run twice (``05_infer``'s function, no TTA) on copies
whose experiment config says ``train.checkpoint: best`` or ``last``, and scores OOF and test side by
side: how optimistic the best-epoch OOF is, and which weights score better on the held-out test labels.

    python bench/checkpoint_choice.py --run ROOT:DATA [--run ROOT:DATA ...] [--experiment baseline]

ROOT is a run's ``paths.root`` (e.g. a quality-bench ``work`` folder), DATA the competition folder
with its ``solution.csv``. Writes ``bench/results/checkpoint_choice.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.metrics import accuracy_score, f1_score, log_loss

from imgclf.config.loading import load_config
from imgclf.data.folds import read_folds
from imgclf.data.ingest import load_competition
from imgclf.inference.predict import infer_experiment
from imgclf.paths import Paths

OUT = Path(__file__).resolve().parent / "results"


def set_checkpoint(paths: Paths, experiment: str, checkpoint: str) -> None:
    """The experiment's saved config, as inference reads it, with ``train.checkpoint`` set."""
    saved = yaml.safe_load(paths.config_yaml(experiment).read_text())
    saved.setdefault("train", {})["checkpoint"] = checkpoint
    paths.config_yaml(experiment).write_text(yaml.safe_dump(saved, sort_keys=False))


def scored(paths: Paths, comp, experiment: str, data: Path) -> dict:
    oof = pd.read_csv(paths.oof_tta_csv(experiment), dtype={"id": str})
    labels = comp.labels_of(oof["id"])
    probs = oof[comp.classes].to_numpy()
    test = pd.read_csv(paths.test_csv(experiment), dtype={"id": str})
    truth = pd.read_csv(data / "solution.csv", dtype={"id": str, "label": str}).set_index("id")
    predicted = np.asarray(comp.classes, dtype=str)[test[comp.classes].to_numpy().argmax(1)]
    expected = truth.loc[test["id"], "label"].to_numpy()
    return {"oof_accuracy": float(accuracy_score(labels, probs.argmax(1))),
            "oof_log_loss": float(log_loss(labels, probs, labels=range(len(comp.classes)))),
            "test_accuracy": float(accuracy_score(expected, predicted)),
            "test_f1_macro": float(f1_score(expected, predicted, average="macro"))}


def compare(root: Path, data: Path, experiment: str) -> dict:
    result = {}
    for variant in ("best", "last"):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(root / "models" / data.name, Path(tmp) / "models" / data.name,
                            ignore=shutil.ignore_patterns("cache", "tb", "errors"))
            cfg = load_config(None, [f"paths.root={tmp}", f"data.dir={data}", f"experiment={experiment}",
                                     "infer.tta=[identity]", "device=cpu"])
            paths = Paths.from_config(cfg)
            comp = load_competition(cfg, paths)
            folds = read_folds(paths, comp)
            set_checkpoint(paths, experiment, variant)
            epochs = [torch.load(paths.model_ckpt(k, experiment, variant), map_location="cpu",
                                 weights_only=True)["epoch"] for k in range(int(folds.max()) + 1)]
            infer_experiment(cfg, paths, comp, folds, experiment)
            result[variant] = {**scored(paths, comp, experiment, data), "epochs": epochs}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", required=True, help="ROOT:DATA of a finished run")
    p.add_argument("--experiment", default="baseline")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows, results = [], {}
    for spec in args.run:
        root, data = (Path(part) for part in spec.split(":"))
        results[data.name] = one = compare(root, data, args.experiment)
        for variant, s in one.items():
            rows.append(f"| {data.name} | {variant} | {s['oof_accuracy']:.4f} | {s['oof_log_loss']:.4f} | "
                        f"{s['test_accuracy']:.4f} | {s['test_f1_macro']:.4f} | {s['epochs']} |")
    head = "| set | checkpoint | OOF acc | OOF log loss | test acc | test F1 | epoch kept per fold |"
    text = "\n".join([head, "|---|---|---|---|---|---|---|", *rows])
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "checkpoint_choice.md").write_text(text + "\n")
    (args.out / "checkpoint_choice.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
