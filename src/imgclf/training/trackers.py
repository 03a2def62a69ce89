"""Experiment trackers besides TensorBoard: Weights & Biases and MLflow (``track.backends``).

Each fold is one tracker run, and the folds of an experiment's run share one group (wandb's
``group``, an MLflow tag and experiment): its config and training plan at the start, every epoch's
row of history.csv, and the fold's OOF scores at the end. The trackers only watch: a package that
is missing or a tracker that fails (an unwritable folder, a full disk, a server) is one warning line
and the tracker is switched off for the fold; training never stops for it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.config.schema import Config
from imgclf.optional import import_wandb
from imgclf.paths import Paths

log = logging.getLogger(__name__)


class WandbRun:
    name = "wandb"

    def __init__(self, where: dict[str, Any], config: dict, plan: dict):
        wandb = import_wandb()
        Path(where["dir"]).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=where["project"], group=where["group"], job_type=where["experiment"], name=where["name"],
            dir=where["dir"], config={"config": config, "plan": plan}, reinit="create_new",
            mode=os.environ.get("WANDB_MODE", "offline"),  # no network unless the user asks for it
            settings=wandb.Settings(console="off", silent=True))

    def log_epoch(self, row: dict[str, float]) -> None:
        self.run.log({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

    def finish(self, final: dict[str, float]) -> None:
        self.run.summary.update({f"oof/{k}": v for k, v in final.items()})
        self.run.finish()


def tracking_uri(track_dir: Path) -> str:
    """The MLflow store of ``track.dir``: ``mlflow ui --backend-store-uri <this>`` shows it."""
    return f"sqlite:///{Path(track_dir).resolve() / 'mlflow' / 'mlflow.db'}"


class MlflowRun:
    name = "mlflow"

    def __init__(self, where: dict[str, Any], config: dict, plan: dict):
        from mlflow.tracking import MlflowClient  # optional package: imported only when asked for

        # a local SQLite store: MLflow 3 refuses new file stores ("maintenance mode")
        store = Path(where["dir"]).resolve() / "mlflow"
        store.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=tracking_uri(store.parent))
        found = self.client.get_experiment_by_name(where["group"])
        exp_id = found.experiment_id if found else self.client.create_experiment(
            where["group"], artifact_location=(store / "artifacts").as_uri())
        tags = {"group": where["group"], "experiment": where["experiment"], "fold": str(where["fold"]),
                "project": where["project"]}
        self.run_id = self.client.create_run(exp_id, run_name=where["name"], tags=tags).info.run_id
        self.client.log_dict(self.run_id, config, "config.json")
        self.client.log_dict(self.run_id, plan, "plan.json")
        for key in ("model.name", "train.lr", "train.epochs", "train.batch_size", "data.image_size"):
            section, leaf = key.split(".")
            self.client.log_param(self.run_id, key, config.get(section, {}).get(leaf))

    def log_epoch(self, row: dict[str, float]) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, float | int) and np.isfinite(value):
                self.client.log_metric(self.run_id, key, float(value), step=int(row["epoch"]))

    def finish(self, final: dict[str, float]) -> None:
        for key, value in final.items():
            if np.isfinite(value):
                self.client.log_metric(self.run_id, f"oof_{key}", float(value))
        self.client.set_terminated(self.run_id)


BACKENDS = {"wandb": WandbRun, "mlflow": MlflowRun}


def wants_trackers(cfg: Config) -> bool:
    """Whether ``track.backends`` names a tracker of this module (TensorBoard is the fold's own)."""
    return any(name in BACKENDS for name in cfg.track.backends)


class FoldTrackers:
    """The fold's open tracker runs; every call is guarded (see the module's docstring)."""

    def __init__(self, cfg: Config, paths: Paths, fold: int, experiment: str | None = None):
        exp = experiment or cfg.experiment
        tc = cfg.track
        where = {"dir": str(tc.dir or paths.comp_dir / "track"),
                 "project": tc.project or f"imgclf-{paths.comp}",
                 "group": tc.group or f"{paths.comp}-{exp}", "experiment": exp, "fold": fold,
                 "name": f"{exp}-fold{fold}"}
        plan_file = paths.plan_json(exp)
        plan = json.loads(plan_file.read_text()) if plan_file.is_file() else {}
        self.runs: list = []
        for name in tc.backends:
            if name in BACKENDS:
                run = self._guard(name, lambda cls=BACKENDS[name]: cls(where, cfg.to_dict(), plan))
                if run is not None:
                    self.runs.append(run)

    @staticmethod
    def _guard(name: str, call):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - a tracker only watches: it never fails the run
            first = (str(exc).strip().splitlines() or [""])[0]
            log.warning("tracker %s switched off: %s: %s", name, type(exc).__name__, first)
            return None

    def _each(self, method: str, *args: Any) -> None:
        kept = []
        for run in self.runs:
            if self._guard(run.name, lambda r=run: getattr(r, method)(*args) or True):
                kept.append(run)
        self.runs = kept

    def log_epoch(self, row: dict) -> None:
        self._each("log_epoch", {k: v for k, v in row.items() if isinstance(v, int | float)})

    def finish(self, final: dict[str, float]) -> None:
        self._each("finish", final)
        self.runs = []
