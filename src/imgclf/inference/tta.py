"""How much TTA helps, measured on OOF: the same rows scored without and with the views."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.metrics import get_metric, is_better, paired_noise
from imgclf.paths import Paths
from imgclf.thresholds import tuned_score

log = logging.getLogger(__name__)


# Views tried together: the turns a model trained with random 90-degree turns has seen equally
# often, so that the average over them is symmetric (one turn alone biases it towards that turn).
VIEW_GROUPS = (("rot90", "rot180", "rot270"),)


def candidate_groups(views: list[str], first: int) -> list[list[int]]:
    """The candidate views (all but ``first``) as groups of indices: a whole turn group when every
    turn of it is a candidate, each other view alone."""
    groups, grouped = [], set()
    for group in VIEW_GROUPS:
        if all(v in views for v in group):
            groups.append([views.index(v) for v in group])
            grouped.update(group)
    groups += [[i] for i, v in enumerate(views) if v not in grouped and i != first]
    return groups


def select_views(per_view: np.ndarray, labels: np.ndarray, views: list[str], metric_name: str,
                 merge: str = "prob") -> list[int]:
    """Greedy TTA on OOF: start from identity (or the first view) and add each candidate group in
    turn when it raises the OOF score of the merged views, or lowers the OOF log loss while the score
    moves by no more than its paired noise (a label metric on a few hundred images ties or moves by
    an image or two at random; the log loss still tells whether the average got closer to the
    truth). Returns the indices of the kept views."""
    from imgclf.training.engine import merge_views, softmax  # torch only when TTA is chosen

    metric, log_loss = get_metric(metric_name), get_metric("log_loss")

    def merged(idx: list[int]) -> np.ndarray:
        return softmax(merge_views(per_view[idx], merge))

    kept = [views.index("identity") if "identity" in views else 0]
    best_probs = merged(kept)
    best, best_loss = metric(labels, best_probs), log_loss(labels, best_probs)
    for group in candidate_groups(views, kept[0]):
        probs = merged(kept + group)
        score, loss, noise = metric(labels, probs), log_loss(labels, probs), paired_noise(best_probs, probs)
        names = "+".join(views[i] for i in group)
        log.info("TTA view %s: OOF %s %.4f (log loss %.4f) with it, %.4f (%.4f) without; paired "
                 "noise %.4f", names, metric_name, score, loss, best, best_loss, noise)
        within_noise = loss < best_loss and abs(score - best) <= noise + 1e-9  # float sums
        if is_better(score, best, metric.greater_is_better) or within_noise:
            kept, best_probs, best, best_loss = kept + group, probs, score, loss
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
