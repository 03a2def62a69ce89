"""What a study leaves in ``models/<comp>/tune/``: trials.csv, best_config.yaml, PNG plots, a summary.

Workers that share a study all write these files; an exclusive file lock around "read the study,
write the files" makes the last writer the one with the latest view.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from optuna import Study
from optuna.trial import FrozenTrial, TrialState

from imgclf.atomic import write_csv, write_text
from imgclf.config.loading import dump_yaml
from imgclf.config.schema import Config
from imgclf.paths import Paths
from imgclf.reporting.figures import save_figure
from imgclf.tuning.workers import COUNTED, OWNER_ATTR, REASON_ATTR

log = logging.getLogger(__name__)
PLOTS = ("optimization_history", "param_importances", "slice", "parallel_coordinate")


@contextlib.contextmanager
def _outputs_lock(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def trials_frame(study: Study, keys: list[str]) -> pd.DataFrame:
    """One row per trial: number, state, value, the params (named by config key), then details."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        end = t.datetime_complete
        rows.append({
            "number": t.number, "state": t.state.name, "value": t.value,
            **{key: t.params.get(key) for key in keys},
            "epochs": len(t.intermediate_values),
            "duration_s": (round((end - t.datetime_start).total_seconds(), 1) if end and t.datetime_start
                           else None),
            "fail_reason": t.user_attrs.get(REASON_ATTR, ""),
            "worker": _worker(t),
        })
    columns = ["number", "state", "value", *keys, "epochs", "duration_s", "fail_reason", "worker"]
    return pd.DataFrame(rows, columns=columns)


def _worker(trial: FrozenTrial) -> str:
    owner = trial.user_attrs.get(OWNER_ATTR) or {}
    return f"{owner.get('host', '?')}:{owner.get('pid', '?')}" if owner else ""


def best_trial(study: Study) -> FrozenTrial | None:
    """The best COMPLETE trial (pruned trials stopped early and never compete)."""
    return study.best_trial if any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) \
        else None


def best_config(study: Study, cfg: Config) -> Config | None:
    """The base config with the best trial's params, as its own experiment ``<experiment>_tuned``."""
    best = best_trial(study)
    if best is None:
        return None
    return cfg.updated({**best.params, "experiment": f"{cfg.experiment}_tuned"})


def write_outputs(study: Study, cfg: Config, paths: Paths, plots: bool) -> None:
    with _outputs_lock(paths.tune_outputs_lock):
        write_csv(paths.trials_csv, trials_frame(study, list(cfg.tune.space)))
        tuned = best_config(study, cfg)
        if tuned is not None:
            best = best_trial(study)
            header = (f"# Best trial {best.number} of study '{study.study_name}': "
                      f"{cfg.metric} {best.value:.6f}\n"
                      f"# params: {best.params}\n# train it: python pipelines/03_train.py --config "
                      f"{paths.best_config_yaml}   (or 03_train.py --tuned)\n")
            write_text(paths.best_config_yaml, header + dump_yaml(tuned))
        if plots:
            write_plots(study, paths)


def write_plots(study: Study, paths: Paths) -> list[Path]:
    """Optuna's matplotlib plots as PNGs; a plot that needs more trials than there are is skipped."""
    # loaded when a study ends, not by every trial's callback
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as ovm

    complete = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    makers = {
        "optimization_history": (1, lambda: ovm.plot_optimization_history(study)),
        "param_importances": (2, lambda: ovm.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0))),
        "slice": (1, lambda: ovm.plot_slice(study)),
        "parallel_coordinate": (2, lambda: ovm.plot_parallel_coordinate(study)),
    }
    written = []
    for name, (needed, make) in makers.items():
        target = paths.tune_plot_png(name)
        if complete < needed:
            log.info("%s plot skipped: needs %d complete trials, the study has %d", name, needed, complete)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
                axes = make()
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. no parameter ever varied
            log.info("%s plot skipped: %s", name, exc)
            continue
        first = axes.flat[0] if hasattr(axes, "flat") else axes
        save_figure(first.figure, target)
        written.append(target)
    return written


def summary_text(study: Study, cfg: Config, paths: Paths, top: int = 10) -> str:
    trials = study.get_trials(deepcopy=False)
    by_state = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    counted = sum(t.state in COUNTED for t in trials)
    keys = list(cfg.tune.space)
    lines = [f"study '{study.study_name}': {counted}/{cfg.tune.trials} trials counted "
             f"({by_state['COMPLETE']} complete, {by_state['PRUNED']} pruned); "
             f"{by_state['FAIL']} failed, {by_state['RUNNING']} running"]
    reverse = study.direction.name == "MAXIMIZE"
    ranked = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value,
                    reverse=reverse)
    if ranked:
        head = ["rank", "trial", cfg.metric, "epochs", *keys]
        rows = [[str(i + 1), str(t.number), f"{t.value:.4f}", str(len(t.intermediate_values)),
                 *[_fmt(t.params.get(k)) for k in keys]] for i, t in enumerate(ranked[:top])]
        widths = [max(len(r[j]) for r in [head, *rows]) for j in range(len(head))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
        lines.append(f"best: trial {ranked[0].number}, {cfg.metric} {ranked[0].value:.4f} "
                     f"-> {paths.best_config_yaml}")
    else:
        lines.append("no complete trial yet: best_config.yaml not written")
    failed = [t for t in trials if t.state == TrialState.FAIL]
    lines += [f"failed trial {t.number}: {t.user_attrs.get(REASON_ATTR, '?')}" for t in failed[-5:]]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def print_summary(study: Study, cfg: Config, paths: Paths) -> None:
    print(summary_text(study, cfg, paths))
