"""How much TTA helps, measured on OOF: the same rows scored without and with the views."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.metrics import get_metric, is_better
from imgclf.paths import Paths
from imgclf.thresholds import tuned_score

log = logging.getLogger(__name__)


def select_views(per_view: np.ndarray, labels: np.ndarray, views: list[str], metric_name: str,
                 merge: str = "prob") -> list[int]:
    """Greedy TTA on OOF: start from identity (or the first view) and add each candidate view in turn
    when it raises the OOF score of the merged views; returns the indices of the kept views."""
    from imgclf.training.engine import merge_views, softmax  # torch only when TTA is chosen

    metric = get_metric(metric_name)
    kept = [views.index("identity") if "identity" in views else 0]
    best = metric(labels, softmax(merge_views(per_view[kept], merge)))
    for i in range(len(views)):
        if i in kept:
            continue
        score = metric(labels, softmax(merge_views(per_view[kept + [i]], merge)))
        log.info("TTA view %s: OOF %s %.4f with it, %.4f without", views[i], metric_name, score, best)
        if is_better(score, best, metric.greater_is_better):
            kept, best = kept + [i], score
    return sorted(kept)


def tta_gain(cfg: Config, paths: Paths, comp: Competition, experiment: str, oof_tta: pd.DataFrame,
             views: list[str]) -> dict:
    """OOF score without and with TTA, on the same rows."""
    # the fold files, not the merged oof.csv: folds trained on several machines may leave that partial
    plain = pd.concat([pd.read_csv(paths.fold_oof(k, experiment), dtype={"id": str})
                       for k in sorted(oof_tta["fold"].unique())]).set_index("id")
    ids = oof_tta["id"].astype(str)
    labels = comp.labels_of(ids)
    metric = get_metric(cfg.metric, comp.task)
    # multi-label label metrics: each at its best global threshold, a like-for-like comparison
    before = tuned_score(labels, plain.loc[ids, comp.output_columns].to_numpy(), metric)
    after = tuned_score(labels, oof_tta[comp.output_columns].to_numpy(), metric)
    log.info("%s: OOF %s %.4f without TTA, %.4f with TTA %s", experiment, cfg.metric, before, after, views)
    return {"views": views, "metric": cfg.metric, "oof_plain": before, "oof_tta": after,
            "gain": after - before}
