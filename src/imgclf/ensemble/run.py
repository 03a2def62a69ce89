"""Ensemble every selected experiment, compare the methods on OOF, write the submissions."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from imgclf.atomic import write_csv, write_text
from imgclf.config.schema import Config
from imgclf.data.folds import read_folds
from imgclf.data.ingest import load_competition
from imgclf.ensemble.methods import (
    LAGGARD_NOISES,
    METHODS,
    Blend,
    choose_method,
    members_worth_blending,
    run_methods,
    selection_score,
)
from imgclf.ensemble.submission import build_submission, write_submissions
from imgclf.inference.predictions import load_model_predictions, selected_experiments
from imgclf.metrics import REPORTED, Metric, get_metric, score_all
from imgclf.paths import Paths
from imgclf.reporting.errors import write_error_analysis
from imgclf.reporting.run_report import write_run_report

log = logging.getLogger(__name__)

NOTES = {
    "hard": "majority of model labels, ties by summed probability",
    "soft": "mean probability",
    "weighted": "weights fitted on this same OOF (in-sample, optimistic)",
    "weighted_nested": "weights fitted on the other folds (honest score of 'weighted')",
    "rank": "mean per-class rank",
    "geometric": "geometric mean",
    "stacking": "logistic regression, fitted on the other folds",
}


def score_table(blends: dict[str, Blend], singles: dict[str, np.ndarray], labels: np.ndarray,
                metric: str) -> pd.DataFrame:
    """One row per single model and per method; the competition metric first."""
    names = (metric, *[m for m in REPORTED if m != metric])
    rows = [{"method": f"model:{name}", **score_all(labels, probs, names),
             "note": "single model (OOF with TTA)"}
            for name, probs in singles.items()]
    for method in (*METHODS[:5], "weighted_nested", "stacking"):
        blend = blends[method]
        note = NOTES[method]
        if "weights" in blend.info:
            note += f"; weights {blend.info['weights']}"
        rows.append({"method": method, **score_all(labels, blend.oof, names), "note": note})
    return pd.DataFrame(rows)


def run_ensemble(cfg: Config, paths: Paths) -> dict:
    comp = load_competition(cfg, paths)
    folds = read_folds(paths, comp)
    experiments = selected_experiments(cfg, paths, int(folds.max()) + 1, need_checkpoints=False)
    models = [load_model_predictions(paths, comp, folds, e) for e in experiments]
    if comp.continuous:
        from imgclf.ensemble.ordinal_run import run_continuous_ensemble  # its own method set

        return run_continuous_ensemble(cfg, paths, comp, folds, models)
    if comp.multi_label:
        from imgclf.ensemble.multilabel_run import run_multilabel_ensemble  # its own method set

        return run_multilabel_ensemble(cfg, paths, comp, folds, models)
    labels = comp.train["label"].to_numpy()
    metric = get_metric(cfg.metric)
    every = models
    if cfg.ensemble.method == "auto":
        models, experiments = _drop_laggards(models, experiments, labels, metric)
    oofs, tests = np.stack([m.oof for m in models]), np.stack([m.test for m in models])
    blends = run_methods(oofs, tests, labels, folds, metric, seed=cfg.seed)
    table = score_table(blends, {m.name: m.oof for m in every}, labels, cfg.metric)
    write_csv(paths.ensemble_scores_csv, table)
    method = choose_method(blends, labels, metric, cfg.ensemble.method)
    honest = selection_score(blends, method, labels, metric)
    _print_table(table, cfg.metric, method, cfg.ensemble.method, honest, len(models))
    weights = dict(zip(experiments, blends["weighted"].info["weights"], strict=True))
    print(f"weighted voting: weights {weights} fitted on the OOF rows (in-sample {cfg.metric} "
          f"{metric(labels, blends['weighted'].oof):.4f}; cross-fitted by fold "
          f"{metric(labels, blends['weighted_nested'].oof):.4f})")

    final = build_submission(comp, blends[method].test)
    alternatives = {f"ensemble_{name}": build_submission(comp, blends[name].test) for name in METHODS}
    alternatives.update({f"model_{m.name}": build_submission(comp, m.test) for m in every})
    written = write_submissions(paths, comp, final, alternatives)
    summary = {
        "metric": cfg.metric, "experiments": experiments,
        "left_out": [m.name for m in every if m.name not in experiments],
        "requested": cfg.ensemble.method, "method": method,
        "honest_oof_score": honest, "weights": weights,
        "nested_fold_weights": blends["weighted_nested"].info["fold_weights"], **written,
    }
    write_text(paths.ensemble_json, json.dumps(summary, indent=1))
    write_error_analysis(labels, blends[method].oof, comp.classes, comp.train["id"].astype(str).tolist(),
                         comp.train["path"].tolist(), paths.ensemble_errors_dir)
    report = write_run_report(paths, [m.name for m in every], cfg.metric)  # the left-out ones too
    print(f"final submission: {written['submission']} (copy: {written['version']}); "
          f"alternatives in {paths.alternatives_dir}; report: {report}")
    return summary


def _print_table(table: pd.DataFrame, metric: str, method: str, requested: str, honest: float,
                 n_models: int) -> None:
    shown = table.drop(columns="note").set_index("method")
    print(f"OOF scores of {n_models} model(s) and every ensemble method ({metric} first):")
    print(shown.to_string(float_format=lambda v: f"{v:.4f}"))
    how = "config ensemble.method" if requested != "auto" else "auto: best honest OOF score"
    print(f"final method: {method} ({how}; OOF {metric} {honest:.4f})")


def _drop_laggards(models: list, experiments: list[str], labels: np.ndarray,
                   metric: Metric) -> tuple[list, list[str]]:
    """The models (and their experiment names) worth blending; says which were left out and why."""
    keep = members_worth_blending(np.stack([m.oof for m in models]), labels, metric)
    for i in sorted(set(range(len(models))) - set(keep)):
        log.info("ensemble: %s left out of the blends: its OOF %s %.4f is clearly below the best "
                 "model's (more than %.0f paired standard errors); its own submission is among the "
                 "alternatives", models[i].name, metric.name, metric(labels, models[i].oof), LAGGARD_NOISES)
    return [models[i] for i in keep], [experiments[i] for i in keep]
