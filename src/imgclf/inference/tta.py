"""How much TTA helps, measured on OOF: the same rows scored without and with the views."""

from __future__ import annotations

import logging

import pandas as pd

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.metrics import get_metric
from imgclf.paths import Paths
from imgclf.thresholds import tuned_score

log = logging.getLogger(__name__)


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
    before = tuned_score(labels, plain.loc[ids, comp.classes].to_numpy(), metric)
    after = tuned_score(labels, oof_tta[comp.classes].to_numpy(), metric)
    log.info("%s: OOF %s %.4f without TTA, %.4f with TTA %s", experiment, cfg.metric, before, after, views)
    return {"views": views, "metric": cfg.metric, "oof_plain": before, "oof_tta": after,
            "gain": after - before}
