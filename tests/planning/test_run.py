"""Planning a real (tiny) competition: the plan and the probe's views fill the null keys, explicit
values win, and the evidence is saved and reused while folds.csv stays the same."""

from __future__ import annotations

import json
import time
from pathlib import Path

from imgclf.data.folds import make_folds
from imgclf.data.ingest import load_competition
from imgclf.paths import Paths
from imgclf.planning.hardware import detect_hardware
from imgclf.planning.plan import FIXED_OVERHEAD_S
from imgclf.planning.run import FIXED_PER_SECOND_BEFORE_PLAN, RUN_STARTED_ENV, plan_experiment, save_plan
from tests.helpers.datasets import make_kaggle_dataset

UNSET = ["train.epochs=null", "train.batch_size=null", "train.warmup_epochs=null", "data.image_size=null",
         "budget=null"]


def _planned(fast_cfg, tmp_path: Path, *overrides: str):
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=60, n_test=6, side=20)
    cfg = fast_cfg(data, *UNSET, *overrides)
    paths = Paths.from_config(cfg)
    comp = load_competition(cfg, paths)
    folds = make_folds(cfg, paths, comp)["fold"].to_numpy()
    return (*plan_experiment(cfg, paths, comp, folds), paths)


def test_null_keys_come_from_the_plan_and_the_probe(fast_cfg, tmp_path: Path) -> None:
    cfg, record, paths = _planned(fast_cfg, tmp_path)
    plan = record["plan"]
    # 20 px images: this machine's floor
    upsampled = 64 if detect_hardware(cfg).cheap_pixels(cfg.train.amp, 64) else 32
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.data.image_size) == (16, plan["epochs"], upsampled)
    assert plan["steps_per_fold"] >= cfg.plan.min_steps  # 30 images per fold still get their updates
    assert cfg.train.warmup_epochs == plan["warmup_epochs"]
    evidence = record["augment_evidence"]
    assert set(evidence["views"]) == {"hflip", "vflip", "rot90", "transpose"}
    for view, e in evidence["views"].items():  # what the probe decided is what training uses
        assert (getattr(cfg.augment, view) > 0) == e["keep"]
    save_plan(record, paths)
    assert json.loads(paths.plan_json().read_text())["plan"] == plan
    assert json.loads(paths.views_json.read_text())["evidence"] == evidence  # reused by the next stage


def test_explicit_values_win_over_plan_and_probe(fast_cfg, tmp_path: Path) -> None:
    cfg, record, _ = _planned(fast_cfg, tmp_path, "train.batch_size=8", "train.epochs=3",
                              "data.image_size=24", "train.warmup_epochs=0.5", "augment.hflip=0",
                              "augment.vflip=0",
                              "augment.rot90=0", "augment.transpose=0.25")
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.data.image_size) == (8, 3, 24)
    assert cfg.train.warmup_epochs == 0.5
    assert (cfg.augment.hflip, cfg.augment.rot90, cfg.augment.transpose) == (0, 0, 0.25)
    assert record["augment_evidence"] is None and record["augment_from_probe"] == []


def test_probe_off_leaves_every_view_off(fast_cfg, tmp_path: Path) -> None:
    cfg, record, paths = _planned(fast_cfg, tmp_path, "plan.probe_views=false")
    assert not any((cfg.augment.hflip, cfg.augment.vflip, cfg.augment.rot90, cfg.augment.transpose))
    assert record["augment_evidence"] is None and not paths.views_json.exists()


def test_a_budgeted_plan_measures_its_throughput_once_and_then_reads_it(fast_cfg, tmp_path: Path) -> None:
    """A rerun must plan the same epochs (a resumed experiment keeps its config): the measurement is
    saved per model, side and batch, and read back instead of measured again."""
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=60, n_test=6, side=20)
    cfg = fast_cfg(data, *UNSET[:-1], "budget=300")
    paths = Paths.from_config(cfg)
    comp = load_competition(cfg, paths)
    folds = make_folds(cfg, paths, comp)["fold"].to_numpy()
    calls = []

    def measure(side: int, batch: int, threads: int | None) -> float:
        calls.append((side, batch))
        return 40.0 + len(calls)  # a second measurement would differ
    first, record = plan_experiment(cfg, paths, comp, folds, measure)
    again, _ = plan_experiment(cfg, paths, comp, folds, measure)
    side = 64 if detect_hardware(cfg).cheap_pixels(cfg.train.amp, 64) else 32
    assert calls == [(side, 16)] and first.train.epochs == again.train.epochs
    reasons = " ".join(record["plan"]["reasons"])
    assert "41 training images/s on cpu" in reasons and "(measured)" in reasons
    saved = json.loads(paths.throughput_json.read_text())
    assert [v for k, v in saved.items() if not k.startswith("fixed seconds")] == [41.0]
    other, _ = plan_experiment(cfg.updated({"model.name": "regnetx_002"}), paths, comp, folds, measure)
    assert calls == [(side, 16), (side, 16)]  # another model: measured again
    unbudgeted, _ = plan_experiment(cfg.updated({"budget": None}), paths, comp, folds, measure)
    assert len(calls) == 2  # without a budget nothing depends on the rate


def test_the_extra_stage_trains_what_the_base_plan_kept(fast_cfg, tmp_path: Path) -> None:
    from imgclf.planning.run import planned_extra_models

    cfg = fast_cfg(None, "plan.extra_models=[regnetx_002,convnext_atto]")
    paths = Paths.from_config(cfg)
    assert [c.experiment for c in planned_extra_models(cfg, paths)] == [  # no base plan yet: all
        "baseline_regnetx_002", "baseline_convnext_atto"]
    paths.plan_json().parent.mkdir(parents=True)
    paths.plan_json().write_text(json.dumps({"plan": {"extra_models": ["convnext_atto"]}}))
    kept = planned_extra_models(cfg, paths)
    assert [(c.model.name, c.experiment) for c in kept] == [("convnext_atto", "baseline_convnext_atto")]
    paths.plan_json().write_text(json.dumps({"plan": {"extra_models": []}}))
    assert planned_extra_models(cfg, paths) == []


def test_run_all_measures_its_fixed_costs_once_and_a_rerun_reads_them_back(fast_cfg, tmp_path: Path,
                                                                             monkeypatch) -> None:
    """The time run_all.sh took to reach the first plan (EDA, folds, start-up) sets the run's time
    outside training, so a slower machine keeps its run within the budget; a rerun plans the same."""
    data = make_kaggle_dataset(tmp_path / "shapes", n_train=60, n_test=6, side=20)
    cfg = fast_cfg(data, *UNSET[:-1], "budget=120", "plan.min_steps=40")
    paths = Paths.from_config(cfg)
    comp = load_competition(cfg, paths)
    folds = make_folds(cfg, paths, comp)["fold"].to_numpy()
    rate = lambda side, batch, threads: 16.0  # noqa: E731 - a step of 16 images takes a second
    monkeypatch.setenv(RUN_STARTED_ENV, str(time.time() - 20))
    _, record = plan_experiment(cfg, paths, comp, folds, rate)
    per_second = FIXED_PER_SECOND_BEFORE_PLAN
    assert 20 * per_second <= record["plan"]["fixed_seconds"] <= 25 * per_second
    monkeypatch.setenv(RUN_STARTED_ENV, str(time.time() - 200))  # later: read back, not measured again
    _, again = plan_experiment(cfg, paths, comp, folds, rate)
    assert again["plan"] == record["plan"]
    other = Paths.from_config(cfg.updated({"paths.root": str(tmp_path / "other")}))
    monkeypatch.delenv(RUN_STARTED_ENV)  # a stage run on its own
    make_folds(cfg, other, comp)
    _, alone = plan_experiment(cfg, other, comp, folds, rate)
    assert alone["plan"]["fixed_seconds"] == FIXED_OVERHEAD_S
    assert alone["plan"]["epochs"] > record["plan"]["epochs"]  # 55 s outside training leave it more
