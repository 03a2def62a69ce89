"""wandb (offline) and MLflow (local file store): every fold logs config, plan, epochs and OOF scores
in one group; a tracker that fails or is missing is one warning line, never a failed run."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from imgclf.training.cv import run_cv
from imgclf.training.trackers import FoldTrackers, tracking_uri
from tests.helpers.trainkit import LEARN, competition

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))


def test_every_fold_is_one_run_of_one_group(tmp_path, offline_wandb) -> None:
    from mlflow.tracking import MlflowClient

    track = tmp_path / "track"
    cfg, paths, comp, folds = competition(tmp_path, "train.epochs=2", *LEARN,
                                          "track.backends=[tensorboard, wandb, mlflow]", f"track.dir={track}",
                                          n_train=36)
    run_cv(cfg, paths)
    client = MlflowClient(tracking_uri=tracking_uri(track))
    group = f"{paths.comp}-baseline"
    runs = client.search_runs([client.get_experiment_by_name(group).experiment_id])
    assert sorted(r.data.tags["fold"] for r in runs) == ["0", "1"]
    for run in runs:
        assert run.data.tags["group"] == group and run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
        assert 0.0 <= run.data.metrics["oof_accuracy"] <= 1.0
        artifacts = Path(urlparse(run.info.artifact_uri).path)
        config = json.loads((artifacts / "config.json").read_text())
        assert json.loads((artifacts / "plan.json").read_text())  # the training plan, as plan.json has it
        assert config["model"]["name"] == cfg.model.name
    offline = sorted((track / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(list(d.glob("run-*.wandb")) for d in offline)
    for run_dir in offline:
        # the offline run log is wandb's protobuf record stream (what `wandb sync` uploads); its
        # strings are stored as they are, and wandb 0.30 ships no reader for it
        data = next(run_dir.glob("run-*.wandb")).read_bytes()
        for needle in (group, "oof/accuracy", "val_loss", '"plan"', cfg.model.name):
            assert needle.encode() in data, needle


def test_a_failing_tracker_is_one_warning_and_training_goes_on(tmp_path, offline_wandb, caplog) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the tracker folder should be")
    cfg, paths, comp, folds = competition(tmp_path, "train.epochs=1", *LEARN,
                                          "track.backends=[wandb, mlflow]", f"track.dir={blocker / 'x'}",
                                          n_train=24)
    with caplog.at_level(logging.WARNING):
        summary = run_cv(cfg, paths)
    assert summary["complete"] and paths.oof_csv().is_file()
    lines = [r.getMessage() for r in caplog.records if r.name == "imgclf.training.trackers"]
    # one line per tracker and fold, naming the tracker and the cause
    assert len(lines) == 4 and all(" switched off: " in m for m in lines)
    assert {m.split()[1] for m in lines} == {"wandb", "mlflow"} and "\n" not in "".join(lines)


def test_a_missing_package_is_one_warning(tmp_path, monkeypatch, caplog) -> None:
    cfg, paths, comp, folds = competition(tmp_path, "track.backends=[wandb]", n_train=12)
    monkeypatch.setitem(sys.modules, "wandb", None)  # what Python does for a package that is not there
    with caplog.at_level(logging.WARNING):
        trackers = FoldTrackers(cfg, paths, 0)
        trackers.log_epoch({"epoch": 1, "val_loss": 0.5})
        trackers.finish({"accuracy": 0.5})
    # the tracker's own lines (an INFO line of the fixture is captured too when another test left the
    # root logger at INFO)
    lines = [r.getMessage() for r in caplog.records if r.name == "imgclf.training.trackers"]
    assert len(lines) == 1 and lines[0].startswith("tracker wandb switched off: ModuleNotFoundError")
