"""models/<comp>/report.md: CV per experiment, TTA gains, the ensemble table and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from imgclf.atomic import write_text
from imgclf.paths import Paths
from imgclf.reporting.figures import plot_method_scores
from imgclf.reporting.html import write_report_html
from imgclf.reporting.markdown import markdown_table
from imgclf.reporting.plans import PLAN_COLUMNS, plan_rows


def write_run_report(paths: Paths, experiments: list[str], metric: str) -> Path:
    """Rebuilt from the artefacts alone (cv.json, infer.json, scores.csv, ensemble.json, PNGs), and
    report.html with it."""
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
            tta_rows.append([exp, "+".join(tta.get("candidates", tta["views"])), "+".join(tta["views"]),
                             tta["oof_plain"], tta["oof_tta"], tta["gain"]])
        pictures += _experiment_pictures(paths, exp, [int(k) for k in cv["folds"]])
    out += markdown_table(["experiment", "folds", "mean", "std", "pooled OOF"], rows)
    out += _plan_section(paths, experiments)
    out += ["## TTA (measured on OOF; a candidate view, or the three turns together, is kept only when it "
            "raises the OOF score, or ties it at a lower OOF log loss)", ""]
    out += markdown_table(["experiment", "candidates", "kept", "plain", "with TTA", "gain"], tta_rows)
    out += _ensemble_section(paths, metric, pictures)
    out += _labels_section(paths)
    out += _cutpoints_section(paths)
    out += ["## Plots", ""] + [p + "\n" for p in pictures]
    write_text(paths.report_md, "\n".join(out))
    write_report_html(paths, experiments, metric)
    return paths.report_md


def _plan_section(paths: Paths, experiments: list[str]) -> list[str]:
    """Each experiment's training plan and the augmentation probe's evidence (plan.json)."""
    rows, evidence_line = plan_rows(paths, experiments)
    if not rows:
        return []
    out = ["## Training plan", ""] + markdown_table(PLAN_COLUMNS, rows)
    return out + ([evidence_line, ""] if evidence_line else [])


def _experiment_pictures(paths: Paths, experiment: str, folds: list[int]) -> list[str]:
    """Markdown images of the experiment's plots, linked relative to the report."""
    home = paths.experiment_dir(experiment)
    curves = sorted((paths.learning_curves_png(k, experiment) for k in folds),
                    key=lambda p: p.relative_to(home).as_posix())
    files = [paths.confusion_matrix_png(experiment), paths.per_class_f1_png(experiment), *curves]
    return [f"![{experiment} {p.relative_to(home).as_posix()}]({p.relative_to(paths.comp_dir).as_posix()})"
            for p in files if p.is_file()]


def _labels_section(paths: Paths) -> list[str]:
    """Multi-label only: per-label support, OOF AUC, threshold and F1, and how the thresholds were fitted."""
    if not paths.ensemble_labels_csv.is_file():
        return []
    table = pd.read_csv(paths.ensemble_labels_csv)
    out = ["## Labels (OOF of the final method)", ""]
    out += markdown_table(list(table.columns), table.values.tolist())
    saved = json.loads(paths.ensemble_json.read_text()) if paths.ensemble_json.is_file() else {}
    fit = saved.get("thresholds")
    if fit:
        rule = " + at least one label" if fit["at_least_one"] else ""
        out += [f"Thresholds: {fit['mode']}{rule}; OOF score cross-fitted {fit['honest_oof_score']:.4f} "
                f"(reported), in-sample {fit['in_sample_oof_score']:.4f}, fixed threshold "
                f"{fit['fixed_threshold_oof_score']:.4f}; candidates {fit['candidates']}", ""]
    return out


def _cutpoints_section(paths: Paths) -> list[str]:
    """Ordinal and regression: the cut-points with the OOF score before and after, and the final
    method's grade confusion matrix or predicted-vs-true plot."""
    saved = json.loads(paths.ensemble_json.read_text()) if paths.ensemble_json.is_file() else {}
    if saved.get("task") not in ("ordinal", "regression"):
        return []
    out = [f"## {saved['task'].capitalize()} predictions (OOF of the final method)", ""]
    fit = saved.get("cutpoints")
    if fit and "cross_fitted_oof_score" in fit:  # (an ensemble.json of an older run lacks it)
        how = "fitted" if fit["fitted_cutpoints_used"] else "plain rounding (it beat the cross-fitted fit)"
        out += [f"Cut-points {fit['cutpoints']} ({how}). OOF {saved['metric']}: rounded "
                f"{fit['rounded_oof_score']:.4f}; with cut-points fitted on the other folds "
                f"{fit['cross_fitted_oof_score']:.4f} (in-sample {fit['in_sample_oof_score']:.4f}); "
                f"reported {fit['honest_oof_score']:.4f}.", ""]
    for name in ("grade_confusion.png", "predicted_vs_true.png"):
        if (paths.ensemble_dir / name).is_file():
            out += [f"![{name[:-4].replace('_', ' ')}](ensemble/{name})", ""]
    return out


def _ensemble_section(paths: Paths, metric: str, pictures: list[str]) -> list[str]:
    """The ensemble's score table and final choice; its bar plot goes first among ``pictures``."""
    if not paths.ensemble_scores_csv.is_file():
        return []
    table = pd.read_csv(paths.ensemble_scores_csv)
    out = ["## Ensemble (OOF)", ""] + markdown_table(list(table.columns), table.values.tolist())
    if paths.ensemble_json.is_file():
        chosen = json.loads(paths.ensemble_json.read_text())
        out += [f"Final method: **{chosen['method']}** (requested: {chosen['requested']}; honest OOF "
                f"{metric} {chosen['honest_oof_score']:.4f}); weights: {chosen['weights']}", ""]
        if chosen.get("left_out"):
            left = ", ".join(chosen["left_out"])
            out += [f"Left out of the blends (OOF clearly below the best model's): {left}", ""]
    if metric in table.columns:
        plot_method_scores(table, metric, paths.ensemble_scores_png)
        pictures.insert(0, "![ensemble scores]"
                           f"({paths.ensemble_scores_png.relative_to(paths.comp_dir).as_posix()})")
    return out
