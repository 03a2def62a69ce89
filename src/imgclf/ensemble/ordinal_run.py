"""Ensembling ordinal and regression models: their continuous OOF and test predictions are blended
(mean, weighted, rank, stacking), then (ordinal) cut into grades by cut-points fitted on OOF.

Every method's OOF score is honest: the weights, the stacker and the cut-points that score fold k
are fitted on the other folds only; the ones applied to the test predictions on every OOF row.
Weights and the stacker are fitted by squared error (a grade metric is a step function of them;
the cut-points then optimise the metric itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.linear_model import Ridge

from imgclf.atomic import write_csv, write_text
from imgclf.config.schema import Config
from imgclf.cutpoints import CutFit, apply_cuts, cross_fitted, fit_cutpoints
from imgclf.data.competition import Competition
from imgclf.ensemble.submission import build_submission, write_submissions
from imgclf.inference.predictions import ModelPredictions
from imgclf.metrics import Metric, get_metric, reported, score_all
from imgclf.paths import Paths
from imgclf.reporting.ordinal import plot_grade_confusion, plot_predicted_vs_true
from imgclf.reporting.run_report import write_run_report

METHODS = ("mean", "weighted", "rank", "stacking")
NOTES = {"mean": "mean prediction",
         "weighted": "non-negative least-squares weights, fitted on the other folds",
         "rank": "mean per-model quantile, mapped back onto the mean prediction's scale",
         "stacking": "ridge regression on the model predictions, fitted on the other folds"}

Fitter = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def _weights(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    w, _ = nnls(x, y)
    w = w / w.sum() if w.sum() > 0 else np.full(x.shape[1], 1 / x.shape[1])
    return lambda z: z @ w


def _ridge(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return Ridge(alpha=1.0).fit(x, y).predict


def _cross_fit(fitter: Fitter, oofs: np.ndarray, tests: np.ndarray, labels: np.ndarray,
               folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OOF blended by a combiner fitted on the other folds; test by one fitted on every row."""
    x, y, out = oofs.T, np.asarray(labels, dtype=float), np.zeros(oofs.shape[1])
    for fold in np.unique(folds):
        out[folds == fold] = fitter(x[folds != fold], y[folds != fold])(x[folds == fold])
    return out, fitter(x, y)(tests.T)


def _rank(oofs: np.ndarray, tests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each model's predictions as quantiles of its own OOF predictions, averaged, then read off the
    mean OOF prediction's quantiles (so cut-points and metrics see grade or target units)."""
    def quantile(sorted_oof: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.searchsorted(sorted_oof, v, side="right") / len(sorted_oof)

    ref = np.sort(oofs.mean(0))
    q_oof = np.mean([quantile(np.sort(o), o) for o in oofs], axis=0)
    q_test = np.mean([quantile(np.sort(o), t) for o, t in zip(oofs, tests, strict=True)], axis=0)
    return np.quantile(ref, np.clip(q_oof, 0, 1)), np.quantile(ref, np.clip(q_test, 0, 1))


def blend_all(oofs: np.ndarray, tests: np.ndarray, labels: np.ndarray,
              folds: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Method -> (OOF, test) continuous predictions; oofs [models, n_train], tests [models, n_test]."""
    return {"mean": (oofs.mean(0), tests.mean(0)),
            "weighted": _cross_fit(_weights, oofs, tests, labels, folds),
            "rank": _rank(oofs, tests),
            "stacking": _cross_fit(_ridge, oofs, tests, labels, folds)}


def _row(name: str, oof: np.ndarray, labels: np.ndarray, folds: np.ndarray, comp: Competition, cfg: Config,
         metric: Metric, note: str) -> tuple[dict, CutFit | None]:
    names = (cfg.metric, *[m for m in reported(comp.task) if m != cfg.metric])
    row = {"method": name, **score_all(labels, oof, names, comp.task)}
    fit = None
    if comp.task == "ordinal":
        fit = fit_cutpoints(labels, oof, folds, comp.num_classes, metric)
        row[f"{cfg.metric}_cutpoints"] = fit.cross_fitted_score
    row["honest"] = fit.honest_score if fit is not None else row[cfg.metric]
    return {**row, "note": note}, fit


def run_continuous_ensemble(cfg: Config, paths: Paths, comp: Competition, folds: np.ndarray,
                            models: list[ModelPredictions]) -> dict:
    labels, metric = comp.labels, get_metric(cfg.metric, comp.task)
    oofs, tests = np.stack([m.oof[:, 0] for m in models]), np.stack([m.test[:, 0] for m in models])
    blends = blend_all(oofs, tests, labels, folds)
    rows, fits = [], {}
    for m in models:
        row, _ = _row(f"model:{m.name}", m.oof[:, 0], labels, folds, comp, cfg, metric,
                      "single model (OOF with TTA)")
        rows.append(row)
    for method in METHODS:
        row, fits[method] = _row(method, blends[method][0], labels, folds, comp, cfg, metric, NOTES[method])
        rows.append(row)
    table = pd.DataFrame(rows)
    write_csv(paths.ensemble_scores_csv, table)
    ranked = table[table["method"].isin(METHODS)].set_index("method")["honest"]
    method = (cfg.ensemble.method if cfg.ensemble.method in METHODS else
              str(ranked.idxmax() if metric.greater_is_better else ranked.idxmin()))
    how = ("of the rounded predictions; *_cutpoints: after cut-points fitted on the other folds; honest: "
           "the better of both" if comp.task == "ordinal" else
           "weights and stacker fitted on the other folds")
    print(f"OOF scores of {len(models)} model(s) and every ensemble method ({cfg.metric} {how}):")
    print(table.drop(columns="note").set_index("method").to_string(float_format=lambda v: f"{v:.4f}"))
    honest = float(ranked[method])
    final = _submission(comp, blends[method][1], fits[method])
    alternatives = {f"ensemble_{name}": _submission(comp, blends[name][1], fits[name]) for name in METHODS}
    _plots(paths, comp, blends[method][0], folds, metric, labels)
    written = write_submissions(paths, comp, final, alternatives)
    summary = {"metric": cfg.metric, "task": comp.task, "experiments": [m.name for m in models],
               "requested": cfg.ensemble.method, "method": method, "honest_oof_score": honest,
               "weights": "-", "cutpoints": fits[method].to_dict() if fits[method] else None, **written}
    write_text(paths.ensemble_json, json.dumps(summary, indent=1))
    if fits[method] is not None:
        cut = fits[method]
        how = "fitted" if cut.used else "rounding: it beat the fit"
        print(f"cut-points {cut.cuts.round(3).tolist()} ({how}):"
              f" OOF {cfg.metric} {cut.rounded_score:.4f} rounded, {cut.cross_fitted_score:.4f} cut "
              f"(cross-fitted; in-sample {cut.in_sample_score:.4f})")
    print(f"final method: {method} (honest OOF {cfg.metric} {honest:.4f})")
    report = write_run_report(paths, summary["experiments"], cfg.metric)
    print(f"final submission: {written['submission']} (copy: {written['version']}); report: {report}")
    return summary


def _submission(comp: Competition, test: np.ndarray, fit: CutFit | None) -> pd.DataFrame:
    """Grades by the cut-points fitted on every OOF row; values clipped to the train targets' range."""
    if fit is not None:
        return build_submission(comp, apply_cuts(test, fit.cuts)[:, None])
    values = np.asarray(comp.labels, dtype=float)
    return build_submission(comp, np.clip(test, values.min(), values.max())[:, None])


def _plots(paths: Paths, comp: Competition, oof: np.ndarray, folds: np.ndarray, metric: Metric,
           labels: np.ndarray) -> None:
    """The final method's OOF: grades cut by the other folds' cut-points, or predicted vs true."""
    if comp.task == "ordinal":
        grades, _ = cross_fitted(labels, oof, folds, comp.num_classes, metric)
        plot_grade_confusion(labels, grades, comp.classes, paths.ensemble_dir / "grade_confusion.png",
                             "OOF grades after cut-points (cross-fitted)")
    else:
        plot_predicted_vs_true(labels, oof, paths.ensemble_dir / "predicted_vs_true.png")
