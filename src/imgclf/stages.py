"""The stage functions: what each script in ``pipelines/`` (and ``tune.py``) runs.

Every stage has the signature of ``cli.Stage``: ``(args, cfg, paths) -> None``. It turns the
script's own options into library calls and prints what a person reads at the end; the work itself
happens in the subpackages. Each stage imports its subpackage when it runs, so that a stage loads
only what it needs (the EDA and the scorer never import torch).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from imgclf.cli import parse_folds
from imgclf.config.schema import Config
from imgclf.errors import UserError
from imgclf.paths import Paths

log = logging.getLogger(__name__)


def eda_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    from imgclf.data.ingest import load_competition  # (imports: see the module docstring)
    from imgclf.eda.report import terminal_summary
    from imgclf.eda.run import run_eda

    summary = run_eda(cfg, paths, load_competition(cfg, paths))
    print(terminal_summary(summary, paths.eda_report_md), flush=True)
    _refresh_report(cfg, paths)


def folds_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    from imgclf.data.folds import write_folds  # (imports: see the module docstring)
    from imgclf.data.ingest import load_competition

    write_folds(cfg, paths, load_competition(cfg, paths))


def train_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    """``--tuned`` trains tuning's best config as experiment ``<experiment>_tuned``, ``--extra``
    each of ``plan.extra_models`` as ``<experiment>_<model>``. A rerun with every fold finished
    returns in about a second, before torch is imported. ``--lr-find`` runs the LR range test
    instead of training."""
    if getattr(args, "write_config", None) and not getattr(args, "lr_find", False):
        raise UserError("--write-config FILE needs --lr-find (it writes the range test's suggestion)")
    if getattr(args, "lr_find", False):
        return _lr_find(cfg, paths, getattr(args, "write_config", None))
    if getattr(args, "extra", False):
        from imgclf.planning.run import planned_extra_models  # no torch

        for extra in planned_extra_models(cfg, paths):
            _train(args, extra, Paths.from_config(extra))
        return
    _train(args, cfg, paths)


def _train(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    from imgclf.training.status import finished_run, tuned_config  # no torch (see the module docstring)

    single_process = "WORLD_SIZE" not in os.environ  # under torchrun every rank takes the same path
    if args.tuned and single_process:  # nothing tuned to train is known without torch
        cfg = tuned_config(cfg, paths, args.overrides)
        if cfg is None:
            return
        paths = Paths.from_config(cfg)
    if single_process and finished_run(cfg, paths, parse_folds(args.folds)):
        return
    from imgclf.training.cv import run_cv  # torch
    from imgclf.training.distributed import dist_info, on_main

    if args.tuned and not single_process:
        base = cfg
        cfg = on_main(lambda: tuned_config(base, paths, args.overrides), dist_info())
        if cfg is None:
            return
        paths = Paths.from_config(cfg)
    run_cv(cfg, paths, parse_folds(args.folds))
    if dist_info().is_main:
        _refresh_report(cfg, paths)


def _refresh_report(cfg: Config, paths: Paths) -> None:
    """report.md/report.html show what the stage changed; a report that cannot be rebuilt is one
    warning, never a failed stage (its artefacts are written by then)."""
    from imgclf.reporting.pointers import reported_experiments  # no torch
    from imgclf.reporting.run_report import write_run_report

    try:
        write_run_report(paths, reported_experiments(paths), cfg.metric)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        first = (str(exc).splitlines() or [""])[0][:200]
        log.warning("report.html not rebuilt: %s: %s", type(exc).__name__, first)


def _lr_find(cfg: Config, paths: Paths, write_config: str | None = None) -> None:
    if "WORLD_SIZE" in os.environ:
        raise UserError("03_train.py --lr-find runs in one process (the range test probes one model): "
                        "run it with plain python, not torchrun")
    from imgclf.data.folds import read_folds  # (imports: see the module docstring)
    from imgclf.data.ingest import load_competition
    from imgclf.training.lr_find import check_config_target, find_lr, write_lr_into  # torch

    if write_config:
        check_config_target(Path(write_config))  # before minutes of probing, not after
    comp = load_competition(cfg, paths)
    found = find_lr(cfg, paths, comp, read_folds(paths, comp))
    print(f"LR range test ({len(found.lrs)} updates on fold 0): suggested train.lr={found.suggestion:.3g} "
          f"(configured: {cfg.train.lr:g}); plot: {paths.lr_find_dir / 'lr_find.png'}; to use it: "
          f"--config {paths.lr_find_dir / 'suggested.yaml'}")
    if write_config:
        write_lr_into(Path(write_config), found.suggestion)
        print(f"wrote train.lr={found.suggestion:.3g} into {write_config}")


def tune_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    """Without --trials or --timeout (run_all.sh's call) the budget decides whether to tune at all."""
    from imgclf.tuning.budget import budget_skips_tuning  # no torch (imports: see the module docstring)

    options = {"tune.trials": args.trials, "tune.timeout": args.timeout, "tune.study": args.study,
               "tune.storage": args.storage, "tune.folds": parse_folds(args.folds),
               "tune.n_startup_trials": args.n_startup_trials}
    given = {k: v for k, v in options.items() if v is not None}
    asked = args.trials is not None or args.timeout is not None
    tuning = cfg.updated(given) if given else cfg
    if not asked and budget_skips_tuning(tuning, paths):
        return
    from imgclf.tuning.tuner import tune  # torch and optuna

    tune(tuning, paths)
    _refresh_report(cfg, paths)


def infer_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    from imgclf.inference.predict import run_inference  # torch (imports: see the module docstring)

    results = run_inference(cfg, paths)
    rows = [f"{e:<24} {r['oof_plain']:.4f} -> {r['oof_tta']:.4f} ({'+'.join(r['views'])})"
            for e, r in results.items()]
    print(f"TTA on OOF ({cfg.metric}):\n" + "\n".join(rows))
    _refresh_report(cfg, paths)


def pseudo_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    """The student of ``pseudo.*``; run_all.sh calls it every time, and it does nothing unless enabled."""
    if not cfg.pseudo.enabled:
        print("pseudo.enabled is false: no pseudo-label / distillation student (set pseudo.enabled=true)")
        return
    from imgclf.pseudo.run import run_pseudo  # torch (imports: see the module docstring)

    result = run_pseudo(cfg, paths)
    rows = [f"{e:<28} {'student' if e == result['student'] else 'teacher':<8} "
            f"{_fmt(s['oof'])} -> {_fmt(s['oof_tta'])}" for e, s in result["scores"].items()]
    print(f"pseudo ({cfg.pseudo.mode}): OOF {cfg.metric}, plain -> with TTA\n" + "\n".join(rows))
    _refresh_report(cfg, paths)


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:.4f}"


def ensemble_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    from imgclf.ensemble.run import run_ensemble  # no torch (imports: see the module docstring)

    run_ensemble(cfg, paths)


def report_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    """Rebuild report.md and report.html from the artefacts, then say where to look."""
    from imgclf.reporting.pointers import pointer_lines, reported_experiments  # no torch
    from imgclf.reporting.run_report import write_run_report

    write_run_report(paths, reported_experiments(paths), cfg.metric)
    print("\n".join(pointer_lines(cfg, paths)))


def score_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    """SUBMISSION against SOLUTION, or with ``--auto`` the final submission against the data
    folder's solution.csv when it has one."""
    from imgclf.ensemble.scoring import score_submission  # no torch (imports: see the module docstring)

    metric = args.metric or cfg.metric
    if args.auto:
        solution = paths.solution_csv
        if not solution.is_file():
            print(f"no solution.csv in {paths.data_dir}: nothing to score locally")
            return
        submission = paths.submission_csv
    elif args.submission is None or args.solution is None:
        raise UserError("07_score.py needs SUBMISSION and SOLUTION (or --auto)")
    else:
        submission, solution = Path(args.submission), Path(args.solution)
    value = score_submission(submission, solution, metric)
    print(f"{metric}: {value:.6f}  ({submission} vs {solution})")
