"""models/<comp>/report.html: the run report as one self-contained page (Jinja2 template).

Read from the artefacts alone, like report.md. Every picture is embedded as a data URI, shrunk to
at most ``MAX_WIDTH`` px, so the page opens offline from the file system and stays small whatever
the competition's size; artefacts are linked relative to the page.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from imgclf.atomic import write_text
from imgclf.paths import Paths
from imgclf.reporting.plans import PLAN_COLUMNS, plan_rows

MAX_WIDTH = 900  # px: wide enough for a laptop screen, small enough for the page to stay light
MAX_LINKS = 300
SKIPPED_DIRS = {"cache", "tb", "trials"}  # caches, TensorBoard events, per-trial folders: not for reading


def data_uri(png: Path) -> str:
    """The picture as a PNG data URI, shrunk when wider than ``MAX_WIDTH``."""
    with Image.open(png) as im:
        if im.width <= MAX_WIDTH:
            return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        im = im.convert("RGB")
        im.thumbnail((MAX_WIDTH, MAX_WIDTH * 10))
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figure(paths: Paths, png: Path, caption: str) -> dict | None:
    if not png.is_file():
        return None
    return {"src": data_uri(png), "caption": caption, "href": _rel(paths, png)}


def _rel(paths: Paths, target: Path) -> str:
    try:
        return target.relative_to(paths.comp_dir).as_posix()
    except ValueError:
        return target.resolve().as_uri()


def _table(csv: Path, limit: int = 50) -> dict | None:
    if not csv.is_file():
        return None
    frame = pd.read_csv(csv).head(limit)
    rows = [[f"{v:.4f}" if isinstance(v, float) else v for v in row] for row in frame.itertuples(index=False)]
    return {"columns": list(frame.columns), "rows": rows}


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _errors(paths: Paths, folder: Path, title: str) -> dict | None:
    summary = _json(folder / "summary.json")
    if not summary:
        return None
    figures = [_figure(paths, folder / "top_losses.png", f"{title}: highest OOF losses"),
               _figure(paths, folder / "reliability.png", f"{title}: reliability (ECE {summary['ece']:.3f})"),
               _figure(paths, folder / "cam.png", f"{title}: Grad-CAM of correct and wrong OOF images")]
    return {"summary": summary, "figures": [f for f in figures if f],
            "pairs": _table(folder / "confused_pairs.csv"), "per_class": _table(folder / "per_class.csv")}


def _experiment(paths: Paths, exp: str) -> dict | None:
    cv = _json(paths.cv_json(exp))
    if not cv:
        return None
    folds = [int(k) for k in cv["folds"]]
    figures = [_figure(paths, paths.learning_curves_png(k, exp), f"fold {k} learning curves") for k in folds]
    figures += [_figure(paths, paths.confusion_matrix_png(exp), "OOF confusion matrix"),
                _figure(paths, paths.per_class_f1_png(exp), "OOF F1 per class")]
    tta = _json(paths.infer_json(exp)).get("tta")
    return {"name": exp, "cv": cv, "tta": tta, "figures": [f for f in figures if f],
            "errors": _errors(paths, paths.errors_dir(exp), exp)}


def _eda(paths: Paths) -> dict:
    summary = _json(paths.eda_file("summary.json"))
    scalars = {k: v for k, v in summary.items() if isinstance(v, str | int | float | bool)}
    figures = [_figure(paths, png, png.stem.replace("_", " ")) for png in sorted(paths.eda_dir.glob("*.png"))]
    return {"scalars": scalars, "figures": [f for f in figures if f]}


def _artefacts(paths: Paths) -> list[dict]:
    """Links to the files worth opening: everything but caches, event files and per-trial folders."""
    found = []
    for base in (paths.comp_dir, paths.submissions_dir):
        if not base.is_dir():
            continue
        for f in sorted(base.rglob("*")):
            rel = f.relative_to(base).parts
            if f.is_file() and not SKIPPED_DIRS & set(rel[:-1]) and not any(p.startswith(".") for p in rel):
                found.append({"href": _rel(paths, f), "name": _rel(paths, f) if base == paths.comp_dir
                              else f"submissions/{paths.comp}/{Path(*rel).as_posix()}",
                              "kb": f.stat().st_size / 1024})
    return found[:MAX_LINKS]


def _plans(paths: Paths, experiments: list[str]) -> dict | None:
    rows, evidence_line = plan_rows(paths, experiments)
    return {"table": {"columns": PLAN_COLUMNS, "rows": rows}, "probe": evidence_line} if rows else None


def build_context(paths: Paths, experiments: list[str], metric: str) -> dict:
    tune = [_figure(paths, png, png.stem.replace("_", " ")) for png in sorted(paths.tune_dir.glob("*.png"))]
    return {
        "comp": paths.comp, "metric": metric, "eda": _eda(paths),
        "experiments": [e for e in (_experiment(paths, x) for x in experiments) if e],
        "plans": _plans(paths, experiments),
        "ensemble": {"table": _table(paths.ensemble_scores_csv), "chosen": _json(paths.ensemble_json),
                     "figure": _figure(paths, paths.ensemble_scores_png, "OOF score of each model/method"),
                     "errors": _errors(paths, paths.ensemble_errors_dir, "ensemble")},
        "tune": {"figures": [f for f in tune if f], "trials": _table(paths.trials_csv, limit=30)},
        "lr_find": _figure(paths, paths.lr_find_dir / "lr_find.png", "LR range test"),
        "artefacts": _artefacts(paths),
    }


def write_report_html(paths: Paths, experiments: list[str], metric: str) -> Path:
    env = Environment(loader=PackageLoader("imgclf.reporting", "templates"),
                      autoescape=select_autoescape(["html"]))
    html = env.get_template("report.html").render(build_context(paths, experiments, metric))
    write_text(paths.report_html, html)
    return paths.report_html
