"""The pseudo-label stage: teachers -> per-fold targets (saved, with their checkpoints' record) ->
the student experiment trained per fold like any other (resumable, finished folds kept) -> its TTA
inference, so that the ensemble finds it beside the others."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from imgclf.atomic import atomic_path, write_text
from imgclf.config.schema import Config
from imgclf.data.boxes import competition_crop
from imgclf.data.competition import Competition
from imgclf.data.folds import check_experiment_folds, read_folds
from imgclf.data.ingest import load_competition
from imgclf.errors import UserError
from imgclf.inference.predict import experiment_config, infer_experiment
from imgclf.inference.predictions import selected_experiments
from imgclf.paths import Paths
from imgclf.planning.plan import fold_train_rows
from imgclf.pseudo.targets import check_mode, continuous_fold, extra_row_count, student_fold
from imgclf.pseudo.teacher import FoldLogits, fold_logits, stale_checkpoints
from imgclf.training.cv import run_cv
from imgclf.training.dataset import table_images, train_batches
from imgclf.training.student import StudentFold

log = logging.getLogger(__name__)


def is_student(paths: Paths, experiment: str) -> bool:
    return paths.pseudo_json(experiment).is_file()


def teachers_of(cfg: Config, paths: Paths, n_folds: int) -> list[str]:
    """``pseudo.teacher``, or every complete experiment that is not itself a student."""
    if cfg.pseudo.teacher is not None:
        found = paths.experiments()
        missing = [e for e in cfg.pseudo.teacher if e not in found]
        if missing:
            raise UserError(f"pseudo.teacher: '{missing[0]}' has no config.yaml under {paths.comp_dir} "
                            f"(trained: {', '.join(found) or 'none'})")
        return list(cfg.pseudo.teacher)
    if cfg.ensemble.experiments is not None:
        cfg = cfg.updated({"ensemble.experiments": None})  # the ensemble may list the student itself
    teachers = [e for e in selected_experiments(cfg, paths, n_folds) if not is_student(paths, e)]
    if not teachers:
        raise UserError(f"pseudo: no complete teacher experiment under {paths.comp_dir}; train one first")
    return teachers


def student_config(cfg: Config, teacher: Config, teachers: list[str]) -> Config:
    """The first teacher's saved config ``teacher`` with the student's name, pseudo settings and overrides."""
    pc = cfg.pseudo
    name = pc.student or f"{teachers[0]}_{pc.mode}"
    if name in teachers:
        raise UserError(f"pseudo.student: '{name}' is one of the teachers; give the student its own name")
    # the student's own config.yaml keeps the pseudo settings its targets are made with
    return teacher.updated({**pc.overrides, "experiment": name, "pseudo": pc.model_dump(mode="json")})


def check_init(scfg: Config, teacher: Config, teachers: list[str]) -> None:
    """``pseudo.init: teacher`` loads fold k's teacher weights into fold k's student: one teacher, and
    the student's model must be the teacher's."""
    if scfg.pseudo.init != "teacher":
        return
    if len(teachers) != 1:
        raise UserError(f"pseudo.init: teacher starts each fold from one teacher's weights, got "
                        f"{len(teachers)} teachers ({', '.join(teachers)}); name one in pseudo.teacher")
    if scfg.model.name != teacher.model.name:
        raise UserError(f"pseudo.init: teacher needs the student's model.name ({scfg.model.name}) to be the "
                        f"teacher's ({teacher.model.name}); drop model.name from pseudo.overrides")


def step_matched(scfg: Config, teacher: Config, n_train: int, n_folds: int, extra_rows: int) -> Config:
    """``pseudo.schedule: steps``: the student's epochs set so that a fold trains as many optimiser
    steps as its teacher's did, over the fold's train images plus ``extra_rows`` (the selected, or
    every, test image). Trained for the teacher's epochs, a student with 4x the rows gets 4x the
    updates, and a teacher trained that long beat it (bench/pseudo_gain.py): the gain was the
    updates'. ``mixed``: as many steps too, each an epoch's batch of the fold's train images (the
    pseudo-labelled rows ride along). A ``train.epochs`` in ``pseudo.overrides`` wins."""
    schedule = scfg.pseudo.schedule
    if schedule == "epochs" or "train.epochs" in scfg.pseudo.overrides:
        return scfg
    per_fold = fold_train_rows(n_train, n_folds)
    teacher_steps = teacher.train.epochs * train_batches(per_fold, teacher.train.batch_size)
    student_batches = train_batches(per_fold + (0 if schedule == "mixed" else extra_rows),
                                    scfg.train.batch_size)
    epochs = max(1, round(teacher_steps / student_batches))
    log.info("pseudo: the student trains %d epochs of %d steps, the teacher's %d steps per fold "
             "(pseudo.schedule=%s)", epochs, student_batches, teacher_steps, schedule)
    return scfg.updated({"train.epochs": epochs})


def run_pseudo(cfg: Config, paths: Paths) -> dict:
    """Train (or resume) the student of every fold, infer it; the teachers' and student's OOF scores."""
    comp = load_competition(cfg, paths)
    folds = read_folds(paths, comp)
    n_folds = int(folds.max()) + 1
    teachers = teachers_of(cfg, paths, n_folds)
    for teacher in teachers:  # fold k of a teacher must be this folds.csv's fold k
        check_experiment_folds(paths, teacher)
    teacher_cfg = experiment_config(cfg, paths, teachers[0])
    scfg = student_config(cfg, teacher_cfg, teachers)
    check_init(scfg, teacher_cfg, teachers)
    check_mode(scfg, comp)
    student = scfg.experiment
    for fold in range(n_folds):  # a finished student fold whose teacher changed is refused too
        refuse_stale(paths, student, fold)  # before anything is written: a refused run changes nothing
    if comp.continuous:
        log.info("pseudo: a %s task has no class probabilities to select by: every test image gets "
                 "its teacher's number (pseudo.threshold and pseudo.top_fraction do not apply)", comp.task)
    elif cfg.pseudo.mode != "distill" and None not in (cfg.pseudo.threshold, cfg.pseudo.top_fraction):
        log.info("pseudo.threshold=%g selects the test images; pseudo.top_fraction (%g) is ignored",
                 cfg.pseudo.threshold, cfg.pseudo.top_fraction)
    # the plan counts the rows a student fold really trains on: its train images and these
    rows = [extra_row_count(scfg.pseudo, fold_targets(scfg, paths, comp, folds, teachers, fold), comp)
            for fold in range(n_folds)]
    scfg = step_matched(scfg, teacher_cfg, len(comp.train), n_folds, round(float(np.mean(rows))))
    write_text(paths.pseudo_json(student), json.dumps({"teachers": teachers, **cfg.pseudo.model_dump()},
                                                      indent=1, default=str) + "\n")
    log.info("pseudo: student '%s' (%s) of teacher(s) %s", student, cfg.pseudo.mode, ", ".join(teachers))
    summary = run_cv(scfg, Paths.from_config(scfg),
                     student=lambda fold: fold_student(scfg, paths, comp, folds, teachers, fold),
                     student_rows=round(float(np.mean(rows))))
    infer_experiment(cfg, paths, comp, folds, student)
    scores = oof_scores(paths, [*teachers, student], cfg.metric)
    return {"student": student, "teachers": teachers, "scores": scores, "metric": cfg.metric, "cv": summary}


def refuse_stale(paths: Paths, student: str, fold: int) -> None:
    record = paths.teacher_json(fold, student)
    if not record.is_file():
        return
    stale = stale_checkpoints(paths, json.loads(record.read_text())["checkpoints"])
    if stale:
        raise UserError(f"pseudo: the targets of student '{student}' fold {fold} were made by teacher "
                        f"checkpoints that changed since ({'; '.join(stale[:2])}): stale targets refused; "
                        f"delete {paths.experiment_dir(student)} (or set pseudo.student=NEW) to rebuild it")


def fold_targets(scfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, teachers: list[str],
                 fold: int) -> FoldLogits:
    """Fold ``fold``'s teacher logits: made once from the fold's teachers and saved (with the record
    of their checkpoints), so that a resumed fold trains on the same ones."""
    student = scfg.experiment
    saved, record = paths.teacher_targets_npz(fold, student), paths.teacher_json(fold, student)
    if saved.is_file() and record.is_file():
        refuse_stale(paths, student, fold)
        with np.load(saved) as npz:
            return FoldLogits(fold, npz["test"], npz.get("train", None),
                              json.loads(record.read_text())["checkpoints"])
    logits = fold_logits(scfg, paths, comp, folds, teachers, fold, scfg.pseudo.mode == "distill")
    paths.fold_dir(fold, student).mkdir(parents=True, exist_ok=True)
    arrays = {"test": logits.test} | ({} if logits.train is None else {"train": logits.train})
    with atomic_path(saved) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    write_text(record, json.dumps({"fold": fold, "checkpoints": logits.record, "selection": None},
                                  indent=1) + "\n")
    return logits


def fold_student(scfg: Config, paths: Paths, comp: Competition, folds: np.ndarray, teachers: list[str],
                 fold: int) -> StudentFold:
    """Fold ``fold``'s rows and loss, rebuilt from its saved teacher logits."""
    logits = fold_targets(scfg, paths, comp, folds, teachers, fold)
    size, crop = scfg.data.image_size, competition_crop(scfg.data, comp)
    test_images = table_images(comp.test, size, scfg, paths, "test", crop)
    if comp.continuous:
        result, selection = continuous_fold(scfg, comp, logits, test_images)
    else:
        result, selection = student_fold(scfg.pseudo, comp, folds, logits, test_images)
    if scfg.pseudo.init == "teacher":  # the checkpoint that made these targets: fold k's own teacher
        result = replace(result, init_weights=Path(logits.record[0]["path"]))
    record = {"fold": fold, "checkpoints": logits.record, "selection": selection}
    write_text(paths.teacher_json(fold, scfg.experiment), json.dumps(record, indent=1) + "\n")
    log.info("pseudo fold %d: %d of %d test images from teacher fold %d", fold, selection["selected"],
             selection["of"], fold)
    return result


def oof_scores(paths: Paths, experiments: list[str], metric: str) -> dict[str, dict]:
    """Pooled OOF score of each experiment, without and with its TTA (infer.json)."""
    out = {}
    for experiment in experiments:
        cv, tta = paths.cv_json(experiment), paths.infer_json(experiment)
        plain = json.loads(cv.read_text())["pooled"].get(metric) if cv.is_file() else None
        with_tta = json.loads(tta.read_text())["tta"].get("oof_tta") if tta.is_file() else None
        out[experiment] = {"oof": plain, "oof_tta": with_tta}
    return out
