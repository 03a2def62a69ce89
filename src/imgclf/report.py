"""Plots people would rather see than read: learning curves, confusion matrix, per-class F1."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import confusion_matrix, f1_score  # noqa: E402

from .atomic import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, target: Path) -> None:
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_learning_curves(history: pd.DataFrame, metric: str, target: Path) -> None:
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(history["epoch"], history["train_loss"], label="train")
    ax_loss.plot(history["epoch"], history["val_loss"], label="valid")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    ax_metric.plot(history["epoch"], history["score"], color="tab:green")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    save_figure(fig, target)


def plot_oof(labels: np.ndarray, probs: np.ndarray, classes: list[str], out_dir: Path) -> None:
    pred = probs.argmax(axis=1)
    n = len(classes)
    cm = confusion_matrix(labels, pred, labels=np.arange(n))
    side = min(14, 3 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title="OOF confusion matrix")
    plt.setp(ax.get_xticklabels(), rotation=90)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    save_figure(fig, out_dir / "confusion_matrix.png")
    f1 = f1_score(labels, pred, labels=np.arange(n), average=None, zero_division=0)
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * n + 2), 3.5))
    ax.bar(range(n), f1, color="tab:blue")
    ax.set(xticks=range(n), xticklabels=classes, ylim=(0, 1), ylabel="F1", title="OOF F1 per class")
    plt.setp(ax.get_xticklabels(), rotation=90)
    save_figure(fig, out_dir / "per_class_f1.png")


def plot_method_scores(table: pd.DataFrame, metric: str, target: Path) -> None:
    """Horizontal bars of every single model's and method's OOF score, zoomed on their range."""
    values = table[metric].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(table) + 1.2))
    ax.barh(range(len(table)), values, color=["tab:gray" if m.startswith("model:") else "tab:blue"
                                              for m in table["method"]])
    ax.set(yticks=range(len(table)), yticklabels=table["method"], xlabel=f"OOF {metric}",
           title="single models (grey) and ensemble methods")
    finite = values[np.isfinite(values)]
    if finite.size:
        span = max(finite.max() - finite.min(), 1e-3)
        ax.set_xlim(finite.min() - span, finite.max() + 0.5 * span)
    ax.invert_yaxis()
    save_figure(fig, target)


def markdown_table(header: list[str], rows: list[list], float_format: str = "{:.4f}",
                   max_rows: int | None = None) -> list[str]:
    """The lines of a markdown table (then a blank line); rows beyond ``max_rows`` are counted, not shown."""
    def cell(value: object) -> str:
        text = float_format.format(value) if isinstance(value, float) else str(value)
        return text.replace("|", "\\|")

    shown = rows if max_rows is None else rows[:max_rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown]
    if len(rows) > len(shown):
        lines.append(f"\n({len(rows) - len(shown)} more rows not shown)")
    return lines + [""]


def write_run_report(paths, experiments: list[str], metric: str) -> Path:
    """models/<comp>/report.md: CV per experiment, TTA gains, the ensemble table and the plots."""
    import json

    from .atomic import write_text

    out = [f"# Run report: {paths.comp}", "", f"Metric: **{metric}**", "", "## Cross-validation", ""]
    rows, tta_rows, pictures = [], [], []
    for exp in experiments:
        cv_file = paths.cv_json(exp)
        if not cv_file.is_file():
            continue
        cv = json.loads(cv_file.read_text())
        folds = " ".join(f"{v:.4f}" for v in cv["folds"].values())
        rows.append([exp, folds, cv["mean"], cv["std"], cv["pooled"].get(metric, float("nan"))])
        infer_file = paths.infer_json(exp)
        if infer_file.is_file():
            tta = json.loads(infer_file.read_text())["tta"]
            tta_rows.append([exp, "+".join(tta["views"]), tta["oof_plain"], tta["oof_tta"], tta["gain"]])
        curves = sorted(p.relative_to(paths.experiment_dir(exp)).as_posix()
                        for p in paths.experiment_dir(exp).glob("fold*/learning_curves.png"))
        for name in ("confusion_matrix.png", "per_class_f1.png", *curves):
            if (paths.experiment_dir(exp) / name).is_file():
                pictures.append(f"![{exp} {name}]({exp}/{name})")
    out += markdown_table(["experiment", "folds", "mean", "std", "pooled OOF"], rows)
    out += ["## TTA (measured on OOF)", ""] + markdown_table(["experiment", "views", "plain", "with TTA", "gain"],
                                                        tta_rows)
    scores = paths.ensemble_scores_csv
    if scores.is_file():
        table = pd.read_csv(scores)
        out += ["## Ensemble (OOF)", ""] + markdown_table(list(table.columns), table.values.tolist())
        choice = paths.ensemble_json
        if choice.is_file():
            chosen = json.loads(choice.read_text())
            out += [f"Final method: **{chosen['method']}** (requested: {chosen['requested']}; honest OOF "
                    f"{metric} {chosen['honest_oof_score']:.4f}); weights: {chosen['weights']}", ""]
        if metric in table.columns:
            plot_method_scores(table, metric, paths.ensemble_dir / "scores.png")
            pictures.insert(0, "![ensemble scores](ensemble/scores.png)")
    out += ["## Plots", ""] + [p + "\n" for p in pictures]
    write_text(paths.report_md, "\n".join(out))
    return paths.report_md
