"""The bad-input suite: every case of messy data, config or artefacts, in one table.

Each error case runs a real stage (in-process through ``cli.run_stage``, the wrapper every script
uses, or as a subprocess where the process matters: environment, file size limit) on a copy of a
trained tiny project, and must give exactly one ``error:`` line naming the file, column or key, a
non-zero exit, no traceback, and leave ``models/`` and ``submissions/`` as they were (paths, mtimes
and content hashes; TensorBoard event files under ``tb/`` are logs each run adds, not artefacts a
stage reads). Cases marked "works" (stray or hidden files, grayscale/RGBA/16-bit images, a class
only in sample_submission, leftover temp files) must succeed, with the warning where one is due.

Some cases are also tested closer to their code: tests/test_cli_errors.py (CSV and config errors through
the scripts), test_config.py, test_models.py (unknown model, offline hub), test_checkpoint.py (other
classes, pickled objects), test_submission.py (every submission check), test_folds.py, test_dataset.py
(decoding of each image format). This file is the one list of every case, each with the artefact check.
"""

from __future__ import annotations

import hashlib
import io
import resource
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from imgclf.cli import run_stage
from imgclf.config.loading import load_config
from imgclf.data.folds import read_folds
from imgclf.data.ingest import load_competition
from imgclf.paths import Paths
from imgclf.training.cv import prepare_experiment
from imgclf.training.fit import run_fold
from imgclf.training.status import resolve_config
from tests.helpers.datasets import make_kaggle_dataset
from tests.helpers.runs import REPO, one_thread_env

COMP = "shapes"
BASE = ["model.name=test_efficientnet", "model.pretrained=false", "train.epochs=1", "train.batch_size=8",
        "folds.n_splits=2", "data.image_size=16", "train.num_workers=0", "train.warmup_epochs=0",
        "device=cpu", "infer.tta=[identity]"]
# script -> (stage function, lock=True as in the script)
STAGES = {"01_eda": ("eda_stage", True), "02_folds": ("folds_stage", True),
          "03_train": ("train_stage", False), "04_tune": ("tune_stage", False),
          "05_infer": ("infer_stage", True), "06_ensemble": ("ensemble_stage", True),
          "07_score": ("score_stage", False)}


@dataclass
class Case:
    name: str
    stages: tuple[str, ...]  # the last one must fail (error cases) or all must succeed ("works" cases)
    named: tuple[str, ...] = ()  # texts the error line must contain; empty: the case must work
    mutate: Callable[[Path, Path], list[str] | None] | None = None  # (data, root) -> extra arguments
    args: tuple[str, ...] = ()
    warns: str | None = None  # a "works" case must log this warning
    own_data: bool = False  # mutate changes the competition folder: work on a copy of it
    fresh: bool = False  # start without models/ (the case changes what the first ingest records)
    partial: bool = False  # run in place on the project whose experiment 'partial' stopped after epoch 1
    subprocess: bool = False
    env: dict = field(default_factory=dict)
    fsize_limit: int | None = None  # bytes: RLIMIT_FSIZE of the subprocess (a full disk, for writes)


# --- mutations ----------------------------------------------------------------------------------------

def _train(data: Path) -> pd.DataFrame:
    return pd.read_csv(data / "train.csv", dtype=str, keep_default_na=False)


def _image(data: Path, row: int, split: str = "train") -> Path:
    csv = "train.csv" if split == "train" else "sample_submission.csv"
    return data / split / (pd.read_csv(data / csv, dtype=str)["image_id"][row] + ".jpg")


def _edit_train(edit: Callable[[pd.DataFrame], None]) -> Callable[[Path, Path], None]:
    def mutate(data: Path, root: Path) -> None:
        frame = _train(data)
        edit(frame)
        frame.to_csv(data / "train.csv", index=False)
    return mutate


def _cut(row: int, keep: float, png: bool = False) -> Callable[[Path, Path], None]:
    """Cut train image ``row`` to ``keep`` of its bytes (0: empty), as a PNG if ``png``."""
    def mutate(data: Path, root: Path) -> None:
        path = _image(data, row)
        if png:
            image = cv2.imread(str(path))
            path.unlink()
            path = path.with_suffix(".png")
            cv2.imwrite(str(path), image)
        blob = path.read_bytes()
        path.write_bytes(blob[:int(len(blob) * keep)])
    return mutate


def _not_an_image(data: Path, root: Path) -> None:
    _image(data, 4).write_bytes(b"<html>404 Not Found</html>\n" * 20)


def _id_names_a_text_file(data: Path, root: Path) -> None:
    path = _image(data, 5)
    path.unlink()
    path.with_suffix(".txt").write_text("a note, not a picture")


def _as_imagefolder(data: Path) -> None:
    """Rearrange the Kaggle folder into the ImageFolder layout (train/<class>/*, test/*), where every
    file in an image folder is taken for an image unless it is recognised as stray or hidden."""
    for row in _train(data).itertuples():
        (data / "train" / row.label).mkdir(exist_ok=True)
        (data / "train" / f"{row.image_id}.jpg").rename(data / "train" / row.label / f"{row.image_id}.jpg")
    for name in ("train.csv", "sample_submission.csv"):
        (data / name).unlink()


def _stray_files(data: Path, root: Path) -> None:
    _as_imagefolder(data)
    (data / "train" / "notes.txt").write_text("labelled by hand, see wiki")
    (data / "train" / "cat" / "notes.txt").write_text("cats, mostly")
    (data / "train" / "dog" / "labels.csv").write_text("id,label\n")
    (data / "test" / "README.md").write_text("# test images")


def _hidden_files(data: Path, root: Path) -> None:
    _as_imagefolder(data)
    for image in sorted(data.glob("t*/**/*.jpg")):  # macOS resource forks beside every image
        (image.parent / f"._{image.name}").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    for folder in (data / "train", data / "train" / "fox", data / "test"):
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (data / "train" / ".ipynb_checkpoints").mkdir()  # a hidden folder is not a class
    (data / "train" / ".ipynb_checkpoints" / "x.jpg").write_bytes(b"\xff\xd8\xff")


def _reformat(kind: str) -> Callable[[Path, Path], None]:
    """Re-save three train and two test images as grayscale, RGBA or 16-bit PNGs (ids stay the stem)."""
    def convert(image: np.ndarray) -> np.ndarray:
        if kind == "gray":
            return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if kind == "rgba":
            return np.dstack([image, np.full(image.shape[:2], 200, np.uint8)])
        return image.astype(np.uint16) * 257

    def mutate(data: Path, root: Path) -> None:
        for split, rows in (("train", (0, 1, 2)), ("test", (0, 1))):
            for row in rows:
                path = _image(data, row, split)
                image = cv2.imread(str(path))
                path.unlink()
                cv2.imwrite(str(path.with_suffix(".png")), convert(image))
                assert cv2.imread(str(path.with_suffix(".png")), cv2.IMREAD_UNCHANGED).dtype == \
                    (np.uint16 if kind == "16bit" else np.uint8)
    return mutate


def _class_only_in_sample(data: Path, root: Path) -> None:
    sample = pd.read_csv(data / "sample_submission.csv", dtype=str)[["image_id"]]
    for name in ("cat", "dog", "fox", "wolf"):
        sample[name] = 0.25
    sample.to_csv(data / "sample_submission.csv", index=False)


def _missing_test_image(data: Path, root: Path) -> None:
    _image(data, 3, "test").unlink()


def _swap_sample_columns(data: Path, root: Path) -> None:
    sample = pd.read_csv(data / "sample_submission.csv", dtype=str)
    sample[["label", "image_id"]].to_csv(data / "sample_submission.csv", index=False)


def _config_file(data: Path, root: Path) -> list[str]:
    path = root.parent / "my_config.yaml"
    path.write_text("train:\n  lr: fast\n")
    return ["--config", str(path)]


def _folds_of_other_data(data: Path, root: Path) -> None:
    """folds.csv copied from another competition's project (same layout, other images)."""
    other = make_kaggle_dataset(root.parent / "other" / COMP, n_train=24, n_test=6, side=16, seed=1)
    cfg = load_config(None, [*BASE, f"paths.root={root.parent / 'other'}", f"data.dir={other}"])
    paths = Paths.from_config(cfg)
    from imgclf.data.folds import make_folds

    make_folds(cfg, paths, load_competition(cfg, paths))
    shutil.copy(paths.folds_csv, root / "models" / COMP / "folds.csv")


def _relabel(frame: pd.DataFrame) -> None:
    frame.loc[2, "label"] = "dog" if frame.loc[2, "label"] != "dog" else "cat"


def _checkpoint_of_four_classes(data: Path, root: Path) -> None:
    """last.pt of fold 0 (what inference reads) replaced by one trained for four classes (a classifier
    of another shape)."""
    path = root / "models" / COMP / "baseline" / "fold0" / "last.pt"
    state = torch.load(path, weights_only=True)
    state["classes"] = ["cat", "dog", "fox", "wolf"]
    for weights in ("model", "ema"):
        state[weights] = {k: torch.cat([v, v[:1]]) if "classifier." in k else v
                          for k, v in state[weights].items()}
    torch.save(state, path)


def _bad_submission(data: Path, root: Path) -> list[str]:
    submission = root.parent / "my_submission.csv"
    frame = pd.read_csv(root / "submissions" / COMP / "submission.csv", dtype=str)
    frame.iloc[1:].to_csv(submission, index=False)  # one test id lost
    return [str(submission), str(data / "solution.csv")]


def _temp_leftovers(data: Path, root: Path) -> None:
    """What runs killed mid-write leave: partial temp files beside artefacts, a temp 'experiment'."""
    comp = root / "models" / COMP
    (comp / ".tmp-folds.csv.k3j2").write_text("image_id,label,fold\nnot,a,0\n")
    (comp / "baseline" / ".tmp-test.csv.x81a").write_text("id,cat\n")
    (comp / "baseline" / "fold0" / ".tmp-best.pt.2kd9").write_bytes(b"PK\x03\x04truncated")
    (comp / ".tmp-exp").mkdir()
    (comp / ".tmp-exp" / "config.yaml").write_text("experiment: half\n")
    (root / "submissions" / COMP / ".tmp-submission.csv.a1").write_text("image_id,label\n")


CASES = [
    # the competition folder
    Case("missing train.csv", ("02_folds",), ("train.csv", "not found"),
         lambda d, r: (d / "train.csv").unlink(), own_data=True),
    Case("missing image file", ("02_folds",), ("train.csv row 5", "no image file"),
         lambda d, r: _image(d, 3).unlink(), own_data=True),
    Case("zero-byte image", ("03_train",), ("train image", "empty (0 bytes)"), _cut(6, 0.0),
         args=("--set", "experiment=fresh"), own_data=True),
    Case("truncated JPEG", ("03_train",), ("train image", ".jpg", "truncated or corrupt JPEG"), _cut(7, 0.6),
         args=("--set", "experiment=fresh"), own_data=True),
    Case("truncated PNG", ("03_train",), ("train image", ".png", "truncated PNG"), _cut(8, 0.5, png=True),
         args=("--set", "experiment=fresh"), own_data=True),
    Case("truncated JPEG met by the tuner", ("04_tune",),
         ("train image", ".jpg", "truncated or corrupt JPEG"),
         _cut(7, 0.6), args=("--set", "tune.trials=1"), own_data=True),
    Case("image file holding something else", ("03_train",), ("train image", ".jpg", "not an image"),
         _not_an_image, args=("--set", "experiment=fresh"), own_data=True),
    Case("train.csv id naming only a non-image file", ("02_folds",),
         ("train.csv row 7", ".txt", "not an image file"), _id_names_a_text_file, own_data=True),
    Case("stray non-image files in the image folders (ignored)", ("02_folds", "03_train", "05_infer"),
         mutate=_stray_files, own_data=True, fresh=True),
    Case("hidden ._*, .DS_Store files and folders (ignored)", ("02_folds", "03_train", "05_infer"),
         mutate=_hidden_files, own_data=True, fresh=True),
    Case("grayscale PNG (works)", ("03_train", "05_infer"), mutate=_reformat("gray"),
         args=("--set", "experiment=gray"), own_data=True),
    Case("RGBA PNG (works)", ("03_train", "05_infer"), mutate=_reformat("rgba"),
         args=("--set", "experiment=rgba"), own_data=True),
    Case("16-bit PNG (works)", ("03_train", "05_infer"), mutate=_reformat("16bit"),
         args=("--set", "experiment=png16"), own_data=True),
    Case("duplicate ids in train.csv", ("02_folds",), ("train.csv", "column 'image_id'", "duplicate id"),
         _edit_train(lambda f: f.__setitem__("image_id", [*f["image_id"][:-1], f["image_id"][0]])),
         own_data=True),
    Case("NaN label", ("02_folds",), ("train.csv", "column 'label'", "empty/NaN", "row 5"),
         _edit_train(lambda f: f.loc.__setitem__((3, "label"), "NaN")), own_data=True),
    Case("empty label", ("02_folds",), ("train.csv", "column 'label'", "empty/NaN", "row 6"),
         _edit_train(lambda f: f.loc.__setitem__((4, "label"), "")), own_data=True),
    Case("class in sample_submission but not in train (warns)", ("02_folds",), mutate=_class_only_in_sample,
         warns="class(es) ['wolf'] of sample_submission.csv never occur in train.csv", own_data=True,
         fresh=True),
    Case("test image missing for a sample_submission id", ("02_folds",),
         ("sample_submission.csv row 5", "no image file", "test"), _missing_test_image, own_data=True),
    Case("sample_submission with the wrong id column", ("02_folds",),
         ("sample_submission.csv", "column 'label'", "duplicate id", "id column must come first"),
         _swap_sample_columns, own_data=True),
    # the config
    Case("config: unknown key", ("02_folds",),
         ("unknown config key 'train.epoch'", "did you mean 'train.epochs'"),
         args=("--set", "train.epoch=3")),
    Case("config: wrong type", ("03_train",), ("config key 'train.epochs'", "'abc'"),
         args=("--set", "train.epochs=abc")),
    Case("config file: wrong type", ("05_infer",), ("config key 'train.lr'", "'fast'"), _config_file),
    Case("unknown timm model name", ("03_train",),
         ("model.name", "'resnet10'", "did you mean", "'resnet10t'"),
         args=("--set", "model.name=resnet10", "--set", "experiment=fresh")),
    Case("pretrained: true offline", ("03_train",), ("model.pretrained", "model.pretrained_path"),
         args=("--set", "model.pretrained=true", "--set", "model.name=resnet10t",
               "--set", "experiment=fresh"),
         subprocess=True, env={"HF_HUB_OFFLINE": "1"}),
    # artefacts that do not belong together
    *[Case(f"folds.csv from another data set ({stage})", (stage,),
           ("folds.csv was made for different data", "train id(s) added", "move", "away"),
           _folds_of_other_data)
      for stage in ("03_train", "05_infer", "06_ensemble")],
    Case("labels changed since folds.csv was made", ("03_train",),
         ("folds.csv was made for different data", "label(s) in column 'label' changed", "baseline"),
         _edit_train(_relabel), own_data=True),
    Case("re-split under trained experiments", ("02_folds",),
         ("folds.csv would change", "folds.seed: 42 -> 7", "baseline"), args=("--set", "folds.seed=7")),
    Case("checkpoint from a different class count", ("05_infer",), ("fold0/last.pt", "made for 4 classes"),
         _checkpoint_of_four_classes),
    Case("submission failing validation", ("07_score",), ("my_submission.csv", "ids differ", "missing"),
         _bad_submission),
    # the machine
    Case("disk full while ensembling (file size limit)", ("06_ensemble",),
         ("cannot write", "File too large", "unchanged"),
         args=("--set", "ensemble.method=soft"), subprocess=True, fsize_limit=64),
    Case("disk full while saving a checkpoint", ("03_train",),
         ("cannot write", "fold0/", ".pt", "File too large"),
         args=("--set", "experiment=partial", "--set", "train.epochs=2", "--set", "data.cache=none"),
         subprocess=True, fsize_limit=20_000, partial=True),
    Case("partial temp files of killed runs (ignored)", ("05_infer", "06_ensemble"), mutate=_temp_leftovers),
]


# --- the trained tiny project every case starts from --------------------------------------------------

def _argv(data: Path, root: Path, extra: list[str]) -> list[str]:
    return ["--data", str(data), *[a for o in [*BASE, f"paths.root={root}"] for a in ("--set", o)], *extra]


def _in_process(stage: str, argv: list[str]) -> tuple[int, str]:
    # its parser and stage function (04_tune.py is an alias of tune.py)
    script = runpy.run_path(str(REPO / "tune.py" if stage == "04_tune"
                                else REPO / "pipelines" / f"{stage}.py"))
    fn_name, lock = STAGES[stage]
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = run_stage(script["parser"](), script[fn_name], argv, lock=lock,
                         distributed=stage == "03_train")
    return code, err.getvalue()


def _subprocess(stage: str, argv: list[str], case: Case, tmp_path: Path) -> tuple[int, str]:
    def limit() -> None:
        if case.fsize_limit is not None:  # writes beyond it fail with EFBIG, as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize_limit, resource.RLIM_INFINITY))
    # an empty Hugging Face cache: weights cached on this machine must not make "offline" work
    env = {**one_thread_env(), "HF_HOME": str(tmp_path / "hf"), **case.env}
    done = subprocess.run([sys.executable, str(REPO / "pipelines" / f"{stage}.py"), *argv],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300, preexec_fn=limit)
    return done.returncode, done.stderr


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny competition trained through every stage (02, 03, 05, 06) under one root, and under
    another root the same folds with an experiment 'partial' stopped after epoch 1 of 2 on fold 0."""
    top = tmp_path_factory.mktemp("base")
    data, root = make_kaggle_dataset(top / COMP, n_train=24, n_test=6, side=16), top / "project"
    partial_root = top / "partial"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for stage in ("02_folds", "03_train", "05_infer", "06_ensemble"):
            code, err = _in_process(stage, _argv(data, root, []))
            assert code == 0, err[-3000:]
        cfg = load_config(None, [*BASE, f"paths.root={partial_root}", f"data.dir={data}",
                                 "experiment=partial", "train.epochs=2", "data.cache=none"])
        paths = Paths.from_config(cfg)
        paths.comp_dir.mkdir(parents=True)
        for name in ("folds.csv", "data_fingerprint.json", "classes.json"):
            shutil.copy2(root / "models" / COMP / name, paths.comp_dir / name)
        comp = load_competition(cfg, paths)
        cfg, plan = resolve_config(cfg, comp, paths, read_folds(paths, comp))  # as 03_train.py plans it
        prepare_experiment(cfg, paths, plan=plan)

        def stop_after_epoch_1(epoch: int, score: float) -> None:
            raise KeyboardInterrupt  # what Ctrl-C does: last.pt of epoch 1 stays

        with pytest.raises(KeyboardInterrupt):
            run_fold(cfg, paths, comp, read_folds(paths, comp), 0, report=stop_after_epoch_1)
    finally:
        torch.set_num_threads(threads)
    return data, root, partial_root


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    files = [p for top in ("models", "submissions") for p in (root / top).rglob("*") if p.is_file()]
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in files if "tb" not in p.relative_to(root).parts}


def _copy(base: tuple[Path, Path, Path], tmp_path: Path, case: Case) -> tuple[Path, Path]:
    data, root, partial_root = base
    if case.partial:  # in place: config.yaml records paths.root, so a copy would be rewritten on resume
        return data, partial_root
    if case.own_data:
        data = shutil.copytree(data, tmp_path / "data" / COMP)
    if case.fresh:
        return data, tmp_path / "project"
    return data, shutil.copytree(root, tmp_path / "project")  # copy2 keeps the mtimes


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, base: tuple[Path, Path, Path], tmp_path: Path, one_thread) -> None:  # noqa: F811
    data, root = _copy(base, tmp_path, case)
    extra = (case.mutate(data, root) or []) if case.mutate else []
    extra = [*extra, *case.args]
    before = _snapshot(root)
    for i, stage in enumerate(case.stages):
        argv = _argv(data, root, extra)
        code, err = _subprocess(stage, argv, case, tmp_path) if case.subprocess else _in_process(stage, argv)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        if not case.named or i < len(case.stages) - 1:
            assert code == 0 and not errors, f"{stage} should work:\n{err[-3000:]}"
            if case.warns:
                assert case.warns in err, err[-3000:]
            continue
        assert code == 2 and "Traceback" not in err, f"{stage}: exit {code}\n{err[-3000:]}"
        assert len(errors) == 1, err[-3000:]
        missing = [text for text in case.named if text not in errors[0]]
        assert not missing, f"{errors[0]!r} does not name {missing}"
        after = _snapshot(root)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"{case.name}: artefacts created or changed: {changed}"
        print(f"{case.name}: {errors[0]}")


def test_the_suite_counts_at_least_twenty_cases() -> None:
    errors, works = sum(bool(c.named) for c in CASES), sum(not c.named for c in CASES)
    print(f"bad-input cases: {len(CASES)} ({errors} errors, {works} that must work)")
    assert len(CASES) >= 20 and len({c.name for c in CASES}) == len(CASES)


def test_undecodable_image_inside_a_dataloader_worker_is_one_error_line(base, tmp_path: Path) -> None:
    """A file that looks complete (JPEG start and end markers) but does not decode is only found when
    a DataLoader worker reads it (no decoded cache): the worker's traceback must not reach the user."""
    data = shutil.copytree(base[0], tmp_path / "data" / COMP)
    bad = _image(data, 9)
    bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9")
    argv = _argv(data, tmp_path / "project", ["--set", "data.cache=none", "--set", "train.num_workers=1"])
    made = subprocess.run([sys.executable, str(REPO / "pipelines/02_folds.py"), *argv], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert made.returncode == 0, made.stderr
    code, err = _subprocess("03_train", argv, Case("worker", ("03_train",)), tmp_path)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and "worker" not in err, err[-3000:]
    expected = f"error: cannot decode image file (corrupt or not an image): {bad} ("  # then the reason
    assert len(errors) == 1 and errors[0].startswith(expected)
