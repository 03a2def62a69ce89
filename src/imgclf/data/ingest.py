"""Any competition folder into a ``Competition``: the layout detected, its loader run, the class list
recorded (and a changed one refused)."""

from __future__ import annotations

import json
from pathlib import Path

from imgclf.atomic import write_text
from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.demo import materialise_digits
from imgclf.data.imagefolder import load_imagefolder
from imgclf.data.images import is_hidden
from imgclf.data.kaggle import load_kaggle_csv
from imgclf.data.mask import load_mask_competition
from imgclf.data.multilabel import check_metric_for_task
from imgclf.errors import ConfigError, DataError
from imgclf.paths import Paths


def load_competition(cfg: Config, paths: Paths) -> Competition:
    """Read the competition folder named by ``cfg.data.dir`` (materialising the demo if needed)."""
    data_dir = paths.data_dir
    if paths.is_demo:
        materialise_digits(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"competition folder not found: {data_dir}")
    layout = cfg.data.layout if cfg.data.layout != "auto" else detect_layout(data_dir)
    csv_only = cfg.task in ("multi_label", "ordinal", "regression")
    if layout != "csv" and (csv_only or cfg.data.group_column):
        key = f"task: {cfg.task}" if csv_only else "data.group_column"
        raise ConfigError(f"{key} needs the Kaggle CSV layout (train.csv); {data_dir} has the {layout} "
                          "layout")
    if layout == "mask":
        comp = load_mask_competition(data_dir, cfg)
    elif layout == "imagefolder":
        comp = load_imagefolder(data_dir, cfg)
    else:
        comp = load_kaggle_csv(data_dir, cfg)
    check_metric_for_task(cfg, comp.task)
    _save_classes(comp, paths)
    return comp


def detect_layout(data_dir: Path) -> str:
    if (data_dir / "train" / "train.csv").is_file() and (data_dir / "eval" / "info.csv").is_file():
        return "mask"
    if (data_dir / "train.csv").is_file():
        return "csv"
    train = data_dir / "train"
    if train.is_dir() and any(p.is_dir() and not is_hidden(p.name) for p in train.iterdir()):
        return "imagefolder"
    raise DataError(f"{data_dir / 'train.csv'} not found (and {train} holds no class folders): "
                    "expected a Kaggle CSV, ImageFolder or mask-competition layout")


def _save_classes(comp: Competition, paths: Paths) -> None:
    """Record the class vocabulary; a changed vocabulary under existing artefacts is refused."""
    payload = {"classes": comp.classes, "values": comp.class_values, "id_column": comp.id_column,
               "target_columns": comp.target_columns, "submission_kind": comp.submission_kind}
    if comp.task != "single_label":  # a key single-label lacks: its classes.json stays byte-identical
        payload["task"] = comp.task
    path = paths.classes_json
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("classes") != comp.classes:
            raise DataError(f"{path}: the class list of {comp.data_dir} changed since the artefacts in "
                            f"{paths.comp_dir} were made; move that folder away to start afresh")
        if saved == payload:
            return
    write_text(path, json.dumps(payload, indent=1, default=str))
