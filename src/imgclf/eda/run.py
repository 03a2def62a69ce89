"""The EDA of a competition: scan every file once, analyse, write models/<comp>/eda/."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from imgclf.atomic import write_csv, write_text
from imgclf.config.loading import dump_yaml
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.eda.analysis import analyse, grid_ids
from imgclf.eda.crops import crop_summary
from imgclf.eda.multilabel import multilabel_section, multilabel_summary, plot_multilabel
from imgclf.eda.plots import plot_all
from imgclf.eda.report import render_report
from imgclf.eda.scan import scan_split
from imgclf.paths import Paths
from imgclf.reporting.ordinal import plot_target_histogram

log = logging.getLogger(__name__)


def run_eda(cfg: Config, paths: Paths, comp: Competition) -> dict:
    """Scan, analyse, write ``models/<comp>/eda/`` (report.md, PNGs, files.csv, summary.json)."""
    picks = grid_ids(comp, cfg.seed)
    train_files, thumbs = scan_split(comp.train, "train", comp.data_dir,
                                     [i for ids in picks.values() for i in ids])
    test_files, _ = scan_split(comp.test, "test", comp.data_dir)
    files = pd.concat([train_files, test_files], ignore_index=True)
    files["label"] = files["label"].astype("Int64")  # test rows have none
    files["class"] = [comp.classes[v] if not pd.isna(v) else "" for v in files["label"]]
    summary, dups = analyse(cfg, comp, files)
    figures = plot_all(comp, files, summary, picks, thumbs, paths.eda_file)
    summary["crop"] = crop_summary(cfg, comp, paths.eda_file("crops.png"))
    if summary["crop"]:
        figures["crops"] = summary["crop"]["figure"]
    extra: list[str] = []
    if comp.multi_label:
        summary["multi_label"] = multilabel_summary(comp, cfg.folds.n_splits)
        if summary["multi_label"]["rare_labels"]:
            summary["flags"].append(f"rare label(s) {summary['multi_label']['rare_labels'][:10]}: consider "
                                    "train.pos_weight=auto or train.loss=asl; thresholds are fitted on OOF")
        ml_figures = plot_multilabel(comp, summary["multi_label"], paths.eda_file)
        figures.update(ml_figures)
        extra = multilabel_section(summary["multi_label"], ml_figures)
    if comp.continuous:
        png = paths.eda_file("target_histogram.png")
        plot_target_histogram(comp.task, comp.classes, comp.labels, png)
        extra = ["## Target", "", f"Task: {comp.task}.", "", f"![target histogram]({png.name})", ""]
    write_csv(paths.eda_file("files.csv"), files)
    write_csv(paths.eda_file("duplicates.csv"), dups)
    write_text(paths.eda_file("summary.json"), json.dumps(summary, indent=1, default=_plain))
    write_text(paths.eda_file("config.yaml"), dump_yaml(cfg))
    write_text(paths.eda_report_md, render_report(summary, dups, figures) + "\n".join(["", *extra]))
    size = summary["image_size"]
    log.info("image size: median short side %s -> suggested data.image_size=%s "
             "(auto_image_size=%s, cap %s%s)",
             size["median_short_side"], size["suggested"], size["auto_image_size"], size["cap"],
             f"; configured {size['configured']}" if size["configured"] else "")
    log.info("wrote %s", paths.eda_report_md)
    return summary


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
