"""The ensemble stage for a multi-label competition: methods compared on OOF, thresholds fitted out of
fold for the chosen one, saved beside the ensemble and applied to the test predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from imgclf.atomic import write_csv, write_text
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.ensemble.methods import METHODS, Blend
from imgclf.ensemble.multilabel import honest_score, run_methods
from imgclf.ensemble.submission import build_submission, write_submissions
from imgclf.inference.predictions import ModelPredictions
from imgclf.metrics import get_metric, reported, score_all
from imgclf.paths import Paths
from imgclf.reporting.errors_multilabel import write_multilabel_error_analysis
from imgclf.reporting.run_report import write_run_report
from imgclf.thresholds import ThresholdFit, best_global, fit_thresholds

NOTES = {
    "soft": "mean probability per label", "geometric": "per-label geometric mean of p and 1-p",
    "hard": "per-label majority of 0.5 votes", "rank": "per-label mean rank", "weighted": "weights fitted on "
    "this same OOF (in-sample)", "weighted_nested": "weights fitted on the other folds",
    "stacking": "logistic regression per label, fitted on the other folds",
}
# What a tags submission is thresholded for when the competition metric scores probabilities.
TAGS_FALLBACK_METRIC = "f1_samples"


def score_table(blends: dict[str, Blend], singles: dict[str, np.ndarray], labels: np.ndarray,
                folds: np.ndarray, cfg: Config) -> pd.DataFrame:
    """Every model and method: the metrics at 0.5, and ``honest`` (label metrics: a global threshold
    fitted on the other folds), the score that chooses the method."""
    metric = get_metric(cfg.metric, "multi_label")
    names = (cfg.metric, *[m for m in reported("multi_label") if m != cfg.metric])
    rows = [{"method": f"model:{name}", "honest": honest_score(labels, p, folds, metric),
             **score_all(labels, p, names, "multi_label"), "note": "single model (OOF with TTA)"}
            for name, p in singles.items()]
    for method in (*METHODS[:5], "weighted_nested", "stacking"):
        source = "weighted_nested" if method == "weighted" else method
        rows.append({"method": method, "honest": honest_score(labels, blends[source].oof, folds, metric),
                     **score_all(labels, blends[method].oof, names, "multi_label"), "note": NOTES[method]})
    return pd.DataFrame(rows)


def _choose(table: pd.DataFrame, cfg: Config) -> str:
    if cfg.ensemble.method != "auto":
        return cfg.ensemble.method
    metric = get_metric(cfg.metric, "multi_label")
    methods = table[table["method"].isin(METHODS)].set_index("method")["honest"]
    best = None
    for method in METHODS:  # simplest first: ties keep the earlier one
        if best is None or metric.better(float(methods[method]), float(methods[best])):
            best = method
    return best


def label_table(labels: np.ndarray, probs: np.ndarray, fit: ThresholdFit | None,
                classes: list[str]) -> pd.DataFrame:
    """Per label: support, OOF AUC, and F1 at the chosen threshold (the run report's table)."""
    from sklearn.metrics import f1_score, roc_auc_score

    rows = []
    for k, name in enumerate(classes):
        y, p = labels[:, k], probs[:, k]
        t = float(fit.thresholds[k]) if fit is not None else 0.5
        auc = roc_auc_score(y, p) if 0 < y.sum() < len(y) else float("nan")
        rows.append({"label": name, "support": int(y.sum()), "auc": auc, "threshold": t,
                     "f1": f1_score(y, (p >= t).astype(int), zero_division=0)})
    return pd.DataFrame(rows)


def run_multilabel_ensemble(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray,
                            models: list[ModelPredictions]) -> dict:
    labels = comp.labels
    metric = get_metric(cfg.metric, "multi_label")
    oofs, tests = np.stack([m.oof for m in models]), np.stack([m.test for m in models])
    blends = run_methods(oofs, tests, labels, folds, metric, seed=cfg.seed)
    table = score_table(blends, {m.name: m.oof for m in models}, labels, folds, cfg)
    write_csv(paths.ensemble_scores_csv, table)
    method = _choose(table, cfg)
    chosen = blends["weighted_nested" if method == "weighted" else method]
    fit_metric = metric if metric.thresholded else get_metric(TAGS_FALLBACK_METRIC, "multi_label")
    needs_fit = metric.thresholded or comp.submission_kind == "tags"
    ec = cfg.ensemble
    fit = (fit_thresholds(labels, chosen.oof, folds, fit_metric, ec.thresholds, ec.at_least_one,
                          ec.threshold_fixed)
           if needs_fit else None)
    honest = fit.honest_score if (fit is not None and metric.thresholded) else float(
        table.set_index("method").loc[method, "honest"])
    print(f"OOF scores of {len(models)} model(s) and every ensemble method ({cfg.metric} at 0.5; "
          "honest: label metrics after a global threshold fitted on the other folds):")
    print(table.drop(columns="note").set_index("method").to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"final method: {method} (honest OOF {cfg.metric} {honest:.4f})")
    if fit is not None:
        rule = ", at least one label" if fit.at_least_one else ""
        print(f"thresholds ({fit.mode}{rule}) for {fit_metric.name}: "
              f"cross-fitted OOF {fit.honest_score:.4f}, in-sample {fit.in_sample_score:.4f}, "
              f"at {cfg.ensemble.threshold_fixed} {fit.fixed_score:.4f}")
    decision = (fit.thresholds, fit.at_least_one) if fit is not None else None
    final = build_submission(comp, blends[method].test, decision)
    alternatives = {f"ensemble_{name}": build_submission(comp, blends[name].test, _quick_decision(
        labels, blends[name].oof, fit_metric, comp)) for name in METHODS}
    alternatives.update({f"model_{m.name}": build_submission(comp, m.test, _quick_decision(
        labels, m.oof, fit_metric, comp)) for m in models})
    written = write_submissions(paths, comp, final, alternatives)
    write_csv(paths.ensemble_labels_csv, label_table(labels, chosen.oof, fit, comp.classes))
    summary = {"metric": cfg.metric, "task": "multi_label", "experiments": [m.name for m in models],
               "requested": cfg.ensemble.method, "method": method, "honest_oof_score": honest,
               "weights": dict(zip([m.name for m in models], blends["weighted"].info["weights"],
                                   strict=True)),
               "thresholds": fit.to_dict(comp.classes) if fit is not None else None, **written}
    write_text(paths.ensemble_json, json.dumps(summary, indent=1))
    write_multilabel_error_analysis(labels, chosen.oof, comp.classes, comp.train["id"].astype(str).tolist(),
                                    comp.train["path"].tolist(), paths.ensemble_errors_dir,
                                    threshold=fit.thresholds if fit is not None else 0.5)
    report = write_run_report(paths, summary["experiments"], cfg.metric)
    print(f"final submission: {written['submission']} (copy: {written['version']}); report: {report}")
    return summary


def _quick_decision(labels: np.ndarray, oof: np.ndarray, metric, comp: Competition) -> tuple | None:
    """Alternatives in the tags layout: one global threshold fitted on that model's own OOF."""
    if comp.submission_kind != "tags":
        return None
    return np.full(labels.shape[1], best_global(labels, oof, metric)), False
