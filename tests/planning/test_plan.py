"""The training plan: small data gets small batches and enough steps, large data a ceiling, a GPU
a larger plan, the budget is respected, and every value the user sets wins over the plan."""

from __future__ import annotations

import re

from imgclf.config.loading import load_config
from imgclf.planning.hardware import FoldParallelism, Hardware
from imgclf.planning.plan import (
    DataStats,
    apply_plan,
    describe,
    extra_model_configs,
    make_plan,
    run_experiments,
)

CPU2, GPU = Hardware("cpu", 2), Hardware("cuda", 16, 1)


def test_small_data_gets_a_small_batch_and_the_step_floor() -> None:
    """The measured failure: 150 images at batch 64 for 10 epochs = ~20 updates, folds at chance."""
    cfg = load_config(None, ["budget=null"])
    plan = make_plan(DataStats(n_train=150, n_classes=2, n_folds=5, side=25), CPU2, cfg)
    assert plan.batch_size == 16 and plan.steps_per_epoch == 7
    assert plan.steps_per_fold >= cfg.plan.min_steps and plan.epochs == -(-cfg.plan.min_steps // 7)
    assert plan.image_size == 32  # 25 px upsampled: a ResNet's last map would be empty at 24 px
    assert "small data" in describe(plan)


def test_tiny_images_train_at_64_px_where_pixels_are_cheap() -> None:
    """A GPU or a CPU with bf16 matrix units trains 64 px for under ~1.5x the time of 32 px: tiny
    images are upsampled to 64 (resnet10t keeps a 2x2 last map); an fp32 CPU stays at 32 px, and
    so does a CPU with those units when ``train.amp`` keeps it in fp32. Larger images keep their
    median side."""
    cfg = load_config(None, ["budget=null"])
    amx = Hardware("cpu", 2, cpu_bf16=True)
    assert not CPU2.cheap_pixels("auto", 64) and amx.cheap_pixels("auto", 64)
    assert GPU.cheap_pixels("auto", 64)
    assert amx.cheap_pixels("bf16", 64) and not amx.cheap_pixels("off", 64)
    assert not amx.cheap_pixels("fp16", 64)
    for side, fp32_cpu, cheap in ((25, 32, 64), (8, 32, 64), (48, 48, 64), (96, 96, 96), (300, 128, 128)):
        stats = DataStats(n_train=150, n_classes=2, n_folds=5, side=side)
        assert make_plan(stats, CPU2, cfg).image_size == fp32_cpu, side
        assert make_plan(stats, amx, cfg).image_size == cheap, side
        assert make_plan(stats, amx, cfg.updated({"train.amp": "off"})).image_size == fp32_cpu, side
        assert make_plan(stats, GPU, cfg).image_size == max(cheap, min(side, 224)), side
    tiny_bf16 = cfg.updated({"train.amp": "bf16", "data.image_size": 16})
    assert "train.amp=bf16 not taken: 16 px" in describe(make_plan(stats, amx, tiny_bf16))
    assert "not taken" not in describe(make_plan(stats, amx, tiny_bf16.updated({"data.image_size": 32})))


def test_large_data_is_capped_by_max_steps() -> None:
    cfg = load_config(None, ["budget=null", "plan.max_steps=5000"])
    plan = make_plan(DataStats(n_train=200_000, n_classes=100, n_folds=5, side=300), CPU2, cfg)
    assert plan.batch_size == 64 and plan.steps_per_fold <= 5000 + plan.steps_per_epoch
    assert plan.image_size == 128  # CPU: pixels cost time


def test_cuda_plans_larger_batches_and_images_than_cpu_for_the_same_budget() -> None:
    cfg = load_config(None, ["budget=600"])
    stats = DataStats(n_train=20_000, n_classes=10, n_folds=5, side=256)
    cpu, gpu = make_plan(stats, CPU2, cfg), make_plan(stats, GPU, cfg)
    assert gpu.batch_size > cpu.batch_size and gpu.image_size > cpu.image_size
    assert gpu.steps_per_fold * gpu.batch_size > cpu.steps_per_fold * cpu.batch_size  # sees more images


def test_the_budget_caps_the_steps_and_a_run_that_cannot_fit_says_so() -> None:
    stats = DataStats(n_train=1500, n_classes=10, n_folds=5, side=32)
    free = make_plan(stats, CPU2, load_config(None, ["budget=null"]))
    tight = make_plan(stats, CPU2, load_config(None, ["budget=600"]))
    assert tight.steps_per_fold < free.steps_per_fold
    assert tight.run_seconds <= 600 * 1.1
    hopeless = make_plan(stats, CPU2, load_config(None, ["budget=50"]))
    assert hopeless.run_seconds > 50 and "EXCEEDS the budget of 50 s" in describe(hopeless)


def test_a_slower_machines_fixed_costs_leave_training_less_of_the_budget() -> None:
    stats = DataStats(n_train=1500, n_classes=10, n_folds=5, side=32)
    cfg = load_config(None, ["budget=600"])
    fast, slow = make_plan(stats, CPU2, cfg, fixed_s=50.0), make_plan(stats, CPU2, cfg, fixed_s=200.0)
    assert slow.steps_per_fold < fast.steps_per_fold and slow.fixed_seconds == 200.0
    assert fast.run_seconds <= 600 and slow.run_seconds <= 600  # each still fits, with its own costs


def test_inference_of_a_large_test_set_in_many_views_is_part_of_the_budget() -> None:
    """rot14: 376 train images, 1192 test images, seven TTA candidates; inference a fold took as long
    as a third of its training, and the run overran its budget when the plan left it out."""
    cfg = load_config(None, ["budget=280"])
    small = DataStats(n_train=376, n_classes=14, n_folds=5, side=24, n_test=0)
    large = DataStats(n_train=376, n_classes=14, n_folds=5, side=24, n_test=1192)
    rate = lambda side, batch, threads: 98.0  # noqa: E731 - rot14's measured images/s on one thread
    alone = make_plan(small, CPU2, cfg, rate, fixed_s=86.0)
    one_view = make_plan(large, CPU2, cfg, rate, fixed_s=86.0)
    seven = make_plan(large, CPU2, cfg, rate, fixed_s=86.0, tta_views=7)
    assert alone.steps_per_fold > one_view.steps_per_fold > seven.steps_per_fold
    assert seven.run_seconds <= 280 and "7 TTA candidate views" in describe(seven)


def test_explicit_values_win_over_the_plan() -> None:
    stats = DataStats(n_train=150, n_classes=2, n_folds=5, side=25)
    given = load_config(None, ["train.batch_size=64", "train.epochs=3", "train.warmup_epochs=0",
                               "data.image_size=24"])
    planned = apply_plan(given, make_plan(stats, CPU2, given))
    assert (planned.train.batch_size, planned.train.epochs, planned.train.warmup_epochs,
            planned.data.image_size) == (64, 3, 0, 24)
    # epochs given: the budget weighs tuning and the other families against those steps, not the floor
    fixed = make_plan(stats, CPU2, load_config(None, ["train.epochs=3"]))
    assert (fixed.steps_per_fold, fixed.extra_models) == (21, ("regnetx_002",)) and fixed.tune_trials
    assert "skipped" not in describe(fixed) and "small data" not in describe(fixed)
    unset = load_config(None, ["budget=null"])
    filled = apply_plan(unset, make_plan(stats, CPU2, unset))
    assert (filled.train.batch_size, filled.data.image_size) == (16, 32) and filled.train.epochs >= 80


def test_too_small_a_budget_skips_tuning_then_the_extra_models() -> None:
    """Tuning and the other architecture families use what is left: each is dropped in turn when
    the budget cannot give it enough, its share going to what remains; the extra family only trains
    when the base model keeps its step floor beside it."""
    stats = DataStats(n_train=1500, n_classes=10, n_folds=5, side=32)
    roomy = make_plan(stats, CPU2, load_config(None, ["budget=20000"]))
    assert roomy.experiments == 3 and roomy.tune_trials >= 6  # base, regnetx_002, tuned
    assert roomy.extra_models == ("regnetx_002",)
    medium = make_plan(stats, CPU2, load_config(None, ["budget=1500"]))
    assert (medium.experiments, medium.tune_trials, medium.extra_models) == (2, 0, ("regnetx_002",))
    assert "tuning skipped" in describe(medium) and medium.run_seconds <= 1500 * 1.1
    assert medium.steps_per_fold >= 600
    short = make_plan(stats, CPU2, load_config(None, ["budget=900"]))  # the RegNet would leave < 600
    assert (short.experiments, short.extra_models) == (1, ()) and short.steps_per_fold >= 600
    assert "under the floor of 600" in describe(short)
    tight = make_plan(stats, CPU2, load_config(None, ["budget=400"]))
    assert (tight.experiments, tight.tune_trials, tight.extra_models) == (1, 0, ())
    assert "extra models skipped" in describe(tight) and tight.run_seconds <= 400 * 1.1
    shared = int(re.search(r"with them (\d+) steps per fold", describe(tight)).group(1))
    assert tight.steps_per_fold > 1.5 * shared  # the base model got the whole budget
    # an extra model's own plan counts the experiments its base planned, and does not drop itself
    extra = make_plan(stats, CPU2, load_config(None, ["budget=400", "model.name=regnetx_002"]))
    assert extra.experiments == 2 and extra.extra_models == ("regnetx_002",)


def test_the_measured_rate_sets_the_budgeted_steps() -> None:
    stats = DataStats(n_train=1500, n_classes=10, n_folds=5, side=32)
    cfg = load_config(None, ["budget=600", "plan.fold_workers=1"])
    slow = make_plan(stats, CPU2, cfg, rate_of=lambda side, batch, threads: 50.0)
    fast = make_plan(stats, CPU2, cfg, rate_of=lambda side, batch, threads: 500.0)
    assert slow.steps_per_fold < fast.steps_per_fold and "measured" in describe(slow)
    assert abs(slow.fold_seconds - slow.steps_per_fold * slow.batch_size / 50.0 * 1.15) < 0.2


def test_extra_models_are_experiments_of_their_own() -> None:
    cfg = load_config(None, ["plan.extra_models=[regnetx_002,mobilenetv3_small_100]",
                             "model.pretrained_path=weights.pth", "experiment=run1"])
    extras = extra_model_configs(cfg)
    assert [(c.model.name, c.experiment) for c in extras] == [
        ("regnetx_002", "run1_regnetx_002"), ("mobilenetv3_small_100", "run1_mobilenetv3_small_100")]
    assert all(c.model.pretrained_path is None and c.train == cfg.train for c in extras)
    assert run_experiments(cfg) == 4 and run_experiments(cfg.updated({"tune.train_best": False})) == 3


def test_folds_train_side_by_side_on_cpu_each_on_its_share_of_the_cores(monkeypatch) -> None:
    """Two cores, five folds: two fold processes of one thread each, measured on one thread; the
    fifth fold trains alone on both threads, measured on two, so five folds take two fold times and
    the fifth's: the same budget buys more steps than one fold at a time."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    stats = DataStats(n_train=1500, n_classes=10, n_folds=5, side=32)
    asked = []

    def rate(side: int, batch: int, threads: int | None) -> float:
        asked.append(threads)
        return 100.0 if threads == 1 else 120.0  # a second thread adds ~20%: a small model, small images

    side_by_side = make_plan(stats, CPU2, load_config(None, ["budget=600"]), rate_of=rate)
    one_at_a_time = make_plan(stats, CPU2, load_config(None, ["budget=600", "plan.fold_workers=1"]),
                              rate_of=rate)
    assert asked == [1, 2, None]
    assert (side_by_side.fold_workers, side_by_side.fold_threads) == (2, 1)
    assert (one_at_a_time.fold_workers, one_at_a_time.fold_threads) == (1, None)
    assert side_by_side.steps_per_fold > one_at_a_time.steps_per_fold
    assert side_by_side.run_seconds <= 600 and "2 at a time" in describe(side_by_side)
    assert "fold 4 trains after the others on 2 threads (~120 images/s)" in describe(side_by_side)
    # the folds' wall time: two rounds side by side at 85 images/s each, then fold 4 at 120
    infer = side_by_side.run_seconds - side_by_side.fixed_seconds - (2 + 85 / 120) * side_by_side.fold_seconds
    assert 0 <= infer < side_by_side.fold_seconds
    # a GPU, tiny folds, one allowed thread: one fold at a time, in the stage's process
    assert make_plan(stats, GPU, load_config(None, [])).fold_workers == 1
    tiny = DataStats(n_train=40, n_classes=2, n_folds=2, side=16)
    assert make_plan(tiny, CPU2, load_config(None, ["train.epochs=2"])).fold_workers == 1
    asked_for = load_config(None, ["train.epochs=2", "plan.fold_workers=2"])
    assert make_plan(tiny, CPU2, asked_for).fold_workers == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert make_plan(stats, CPU2, load_config(None, [])).fold_workers == 1


def test_a_last_fold_that_would_train_alone_gets_every_workers_threads() -> None:
    """Five folds two at a time leave the fifth alone: it is fold 4 whichever folds are left, on both
    threads, and the folds take two fold times and its own; four folds, or five three at a time
    (two in the last round), keep whole rounds."""
    two = FoldParallelism(2, 1)
    assert two.lone_fold(5) == 4 and two.lone_fold(3) == 2 and two.lone_fold(4) is None
    assert two.lone_threads == 2 and FoldParallelism(2, 4).lone_threads == 8
    assert two.fold_times(5, lone_speedup=2.0) == 2.5 and two.fold_times(4, lone_speedup=2.0) == 2.0
    three = FoldParallelism(3, 1)
    assert three.lone_fold(5) is None and three.fold_times(5) == 2.0 and three.lone_fold(7) == 6
    assert FoldParallelism().lone_fold(5) is None and FoldParallelism().fold_times(5) == 5.0


def test_bf16_fold_processes_are_planned_at_their_own_measured_share(monkeypatch) -> None:
    """Fold processes side by side keep ~0.85 of their throughput alone in fp32 and ~1.0 in bf16 on
    AMX (bench/fold_parallel.py): a plan for 64 px images on such a CPU buys more steps from the
    same measured rate, and one with amp off plans as fp32."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    stats = DataStats(n_train=1500, n_classes=10, n_folds=5, side=64)
    amx = Hardware("cpu", 2, cpu_bf16=True)
    cfg = load_config(None, ["budget=600"])
    rate = lambda side, batch, threads: 100.0  # noqa: E731
    bf16, fp32_cpu = make_plan(stats, amx, cfg, rate_of=rate), make_plan(stats, CPU2, cfg, rate_of=rate)
    amp_off = make_plan(stats, amx, cfg.updated({"train.amp": "off"}), rate_of=rate)
    assert bf16.fold_workers == fp32_cpu.fold_workers == 2 and bf16.image_size == 64
    assert bf16.steps_per_fold > fp32_cpu.steps_per_fold == amp_off.steps_per_fold
    assert "~100 images/s each" in describe(bf16) and "~85 images/s each" in describe(fp32_cpu)
    assert bf16.run_seconds <= 600
