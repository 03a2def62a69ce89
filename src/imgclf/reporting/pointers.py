"""Where to look after a run: the report, TensorBoard's logs, and the tuning study's dashboard."""

from __future__ import annotations

import json
import re
import shlex

from imgclf.config.schema import Config
from imgclf.paths import Paths


def reported_experiments(paths: Paths) -> list[str]:
    """The ensemble's experiments (those it blended, then those it left out) when there is one, else
    every experiment with a cv.json."""
    if paths.ensemble_json.is_file():
        saved = json.loads(paths.ensemble_json.read_text())
        return list(saved["experiments"]) + list(saved.get("left_out", []))
    return [e for e in paths.experiments() if paths.cv_json(e).is_file()]


def pointer_lines(cfg: Config, paths: Paths) -> list[str]:
    lines = [f"report:      {paths.report_html} (open it in a browser; markdown: {paths.report_md})"]
    if any(paths.comp_dir.glob("*/fold*/tb")) or any(paths.tune_dir.glob("**/tb")):
        lines.append(f"TensorBoard: tensorboard --logdir {shlex.quote(str(paths.comp_dir))}")
    storage = cfg.tune.storage
    if storage is None and paths.tune_journal.is_file():
        storage = str(paths.tune_journal)
    if storage is not None:
        shown = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", storage)  # never print a password
        lines.append(f"Optuna:      optuna-dashboard {shlex.quote(shown)}")
    return lines
