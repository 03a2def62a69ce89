"""Ingest of a competition folder into one table shape, whatever its layout.

``Competition.train`` has columns ``id``, ``path``, ``label`` (class index) and ``group`` (person,
patient... or absent); ``Competition.test`` has ``id`` and ``path`` in submission order. Everything
the data folder leaves open (id/target columns, image folders and extensions) is guessed from
``sample_submission.csv`` and the files, and every guess can be overridden in ``data.*``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .atomic import write_text
from .config import Config
from .errors import DataError
from .images import IMAGE_EXTENSIONS, is_hidden, list_images, list_non_images
from .paths import Paths

log = logging.getLogger(__name__)

SubmissionKind = Literal["label", "proba", "binary_proba", "mask"]
TRAIN_DIRS = ("train", "train_images", "images/train")
TEST_DIRS = ("test", "test_images", "images/test")


@dataclass
class Competition:
    name: str
    data_dir: Path
    layout: str
    train: pd.DataFrame
    test: pd.DataFrame
    class_values: list  # label values in class-index order, as the data spells them (int or str)
    id_column: str
    target_columns: list[str]
    submission_kind: SubmissionKind
    sample_submission: pd.DataFrame | None = None
    group_column: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        """Class names as strings: the probability column names of oof.csv and test.csv."""
        return [str(v) for v in self.class_values]

    @property
    def num_classes(self) -> int:
        return len(self.class_values)

    @property
    def has_groups(self) -> bool:
        return "group" in self.train.columns


def load_competition(cfg: Config, paths: Paths) -> Competition:
    """Read the competition folder named by ``cfg.data.dir`` (materialising the demo if needed)."""
    data_dir = paths.data_dir
    if paths.is_demo:
        from .demo import materialise_digits

        materialise_digits(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"competition folder not found: {data_dir}")
    layout = cfg.data.layout if cfg.data.layout != "auto" else detect_layout(data_dir)
    if layout == "mask":
        from .mask_data import load_mask_competition

        comp = load_mask_competition(data_dir, cfg)
    elif layout == "imagefolder":
        comp = _load_imagefolder(data_dir, cfg)
    else:
        comp = _load_kaggle_csv(data_dir, cfg)
    _save_classes(comp, paths)
    return comp


def detect_layout(data_dir: Path) -> str:
    if (data_dir / "train" / "train.csv").is_file() and (data_dir / "eval" / "info.csv").is_file():
        return "mask"
    if (data_dir / "train.csv").is_file():
        return "csv"
    train = data_dir / "train"
    if train.is_dir() and any(p.is_dir() and not is_hidden(p.name) for p in train.iterdir()):
        return "imagefolder"
    raise DataError(f"{data_dir / 'train.csv'} not found (and {train} holds no class folders): "
                    "expected a Kaggle CSV, ImageFolder or mask-competition layout")


def _find_dir(data_dir: Path, override: str | None, candidates: tuple[str, ...], what: str) -> Path:
    if override:
        folder = data_dir / override
        if not folder.is_dir():
            raise DataError(f"data.{what}_dir: folder not found: {folder}")
        return folder
    for name in candidates:
        if (data_dir / name).is_dir():
            return data_dir / name
    globbed = sorted(p for p in data_dir.glob(f"{what}*") if p.is_dir())
    if globbed:
        return globbed[0]
    raise DataError(f"no {what} image folder in {data_dir} (looked for {', '.join(candidates)}); "
                    f"set data.{what}_dir")


def read_csv_strings(path: Path, what: str | None = None) -> pd.DataFrame:
    """A CSV as strings (empty cells NaN); a missing, unparsable or empty file is a DataError."""
    if not path.is_file():
        raise DataError(f"{what or path.name} not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise DataError(f"{path}: no rows")
    return frame


def resolve_image_paths(ids: pd.Series, folder: Path, csv_name: str) -> list[Path]:
    """Map each id (with or without extension) to its file in ``folder``."""
    by_name: dict[str, Path] = {}
    by_stem: dict[str, list[Path]] = {}
    for path in list_images(folder):
        by_name[path.name] = path
        by_stem.setdefault(path.stem, []).append(path)
    resolved = []
    for row, image_id in enumerate(ids):
        path = by_name.get(image_id)
        if path is None:
            matches = by_stem.get(image_id) or by_stem.get(Path(image_id).stem if
                                                           image_id.lower().endswith(IMAGE_EXTENSIONS) else "")
            if not matches:
                raise DataError(_unresolved(ids, row, image_id, folder, csv_name, by_name))
            if len(matches) > 1:
                names = ", ".join(p.name for p in matches)
                raise DataError(f"{csv_name} row {row + 2}: id '{image_id}' matches several files ({names})")
            path = matches[0]
        resolved.append(path)
    return resolved


def _unresolved(ids: pd.Series, row: int, image_id: str, folder: Path, csv_name: str,
                by_name: dict[str, Path]) -> str:
    """Why ``image_id`` names no image: only a non-image file has that name, or the column holds no
    image ids at all (the id column is not the first one), or its file is just missing."""
    where = f"{csv_name} row {row + 2}"
    others = [p.name for p in list_non_images(folder) if image_id in (p.name, p.stem)]
    if others:
        return (f"{where}: id '{image_id}' names {folder / others[0]}, which is not an image file "
                f"(image extensions: {', '.join(IMAGE_EXTENSIONS)})")
    stems = {Path(name).stem for name in by_name}
    if row == 0 and len(ids) > 1 and not any(str(i) in by_name or Path(str(i)).stem in stems for i in ids):
        column = f"column '{ids.name}'" if ids.name is not None else "the id column"
        return (f"{where}: {column} of {csv_name} names no image in {folder} (e.g. '{image_id}'); the id "
                "column must come first (or set data.id_column)")
    return f"{where}: no image file for id '{image_id}' in {folder}"


def check_unique_ids(frame: pd.DataFrame, column: str, csv_path: Path, hint: str = "") -> None:
    missing = frame[column].isna()
    if missing.any():
        raise DataError(f"{csv_path} column '{column}': empty id at row {int(np.argmax(missing)) + 2}{hint}")
    dup = frame[column].duplicated()
    if dup.any():
        first = frame[column][dup].iloc[0]
        raise DataError(f"{csv_path} column '{column}': duplicate id '{first}' ({int(dup.sum())} duplicates){hint}")


def _check_labels(frame: pd.DataFrame, column: str, csv_path: Path, id_column: str) -> None:
    empty = frame[column].isna() | (frame[column].astype(str).str.strip().isin(["", "nan", "NaN", "None"]))
    if empty.any():
        row = int(np.argmax(empty.to_numpy()))
        raise DataError(f"{csv_path} column '{column}': {int(empty.sum())} empty/NaN label(s), first at row "
                        f"{row + 2} (id '{frame[id_column].iloc[row]}')")


def sort_class_values(values: list) -> list:
    """Numeric labels sort as numbers (and stay ints), others as strings.

    Zero-padded labels ("00", "07", "42") stay strings: they are names (GTSRB-style folders), and as
    ints "0" and "00" would merge into one class and "07" would no longer name its folder.
    """
    texts = [str(v).strip() for v in values]
    if any(len(t) > 1 and t[0] == "0" and t[1].isdigit() for t in texts):
        return sorted(set(texts))
    try:
        numbers = [float(v) for v in values]
        if all(n.is_integer() for n in numbers):
            return sorted({int(n) for n in numbers})
        return sorted(set(numbers))
    except (TypeError, ValueError):
        return sorted({str(v) for v in values})


def _coerce_like(values: pd.Series, class_values: list) -> pd.Series:
    sample = class_values[0]
    if isinstance(sample, int):
        return values.astype(float).astype(int)
    if isinstance(sample, float):
        return values.astype(float)
    return values.astype(str)


def _load_kaggle_csv(data_dir: Path, cfg: Config) -> Competition:
    train_csv, sample_csv = data_dir / "train.csv", data_dir / "sample_submission.csv"
    train_df = read_csv_strings(train_csv)
    sample = read_csv_strings(sample_csv)
    id_column = cfg.data.id_column or sample.columns[0]
    if id_column not in sample.columns:
        raise DataError(f"{sample_csv}: id column '{id_column}' not found (columns: {list(sample.columns)})")
    train_id = id_column if id_column in train_df.columns else train_df.columns[0]
    # sample_submission first: a target column taken for the id column (not first) repeats its values
    check_unique_ids(sample, id_column, sample_csv, "" if cfg.data.id_column else
               f"; is '{id_column}' its id column? the id column must come first (or set data.id_column)")
    check_unique_ids(train_df, train_id, train_csv)
    sample_targets = [c for c in sample.columns if c != id_column]
    if not sample_targets:
        raise DataError(f"{sample_csv}: no target column besides the id column '{id_column}'")
    train_dir = _find_dir(data_dir, cfg.data.train_dir, TRAIN_DIRS, "train")
    test_dir = _find_dir(data_dir, cfg.data.test_dir, TEST_DIRS, "test")

    if cfg.data.target_column or len(sample_targets) == 1:
        target = cfg.data.target_column or sample_targets[0]
        if target not in train_df.columns:
            raise DataError(f"{train_csv}: target column '{target}' not found (columns: {list(train_df.columns)})")
        _check_labels(train_df, target, train_csv, train_id)
        class_values = sort_class_values(train_df[target].tolist())
        labels = _coerce_like(train_df[target], class_values)
        kind: SubmissionKind = "binary_proba" if (len(class_values) == 2 and cfg.metric == "roc_auc") else "label"
        target_columns = [target]
        if len(sample_targets) > 1:
            kind = "proba"
    elif all(c in train_df.columns for c in sample_targets):  # one-hot targets in train.csv
        onehot = train_df[sample_targets].astype(float).to_numpy()
        if np.isnan(onehot).any():
            raise DataError(f"{train_csv}: NaN in the one-hot target columns {sample_targets}")
        class_values, labels, target_columns, kind = sample_targets, None, sample_targets, "proba"
        label_index = onehot.argmax(axis=1)
    else:
        candidates = [c for c in train_df.columns if c != train_id]
        if len(candidates) != 1:
            raise DataError(f"{train_csv}: cannot tell the target column among {candidates}; set data.target_column")
        target = candidates[0]
        _check_labels(train_df, target, train_csv, train_id)
        class_values, labels, target_columns, kind = sample_targets, train_df[target].astype(str), [target], "proba"

    if labels is not None:
        index_of = {str(v): i for i, v in enumerate(class_values)}
        unknown = sorted({str(v) for v in labels} - set(index_of))
        if unknown:
            raise DataError(f"{train_csv}: label(s) {unknown[:5]} are not columns of {sample_csv.name}")
        label_index = np.array([index_of[str(v)] for v in labels])
    unseen = [str(v) for i, v in enumerate(class_values) if not (label_index == i).any()]
    if unseen:
        log.warning("class(es) %s of %s never occur in %s", unseen, sample_csv.name, train_csv.name)

    train = pd.DataFrame({
        "id": train_df[train_id].to_numpy(),
        "path": resolve_image_paths(train_df[train_id], train_dir, train_csv.name),
        "label": label_index.astype(int),
    })
    group_column = "group" if "group" in train_df.columns else None
    if group_column:
        train["group"] = train_df[group_column].to_numpy()
    test = pd.DataFrame({"id": sample[id_column].to_numpy(),
                         "path": resolve_image_paths(sample[id_column], test_dir, sample_csv.name)})
    targets = train_df[[train_id] + target_columns].rename(columns={train_id: id_column})
    return Competition(
        name=data_dir.name, data_dir=data_dir, layout="csv", train=train, test=test,
        class_values=list(class_values), id_column=id_column, target_columns=target_columns,
        submission_kind=kind, sample_submission=sample, group_column=group_column,
        extra={"train_targets": targets})


def _load_imagefolder(data_dir: Path, cfg: Config) -> Competition:
    train_dir = data_dir / (cfg.data.train_dir or "train")
    test_dir = data_dir / (cfg.data.test_dir or "test")
    if not train_dir.is_dir():
        raise DataError(f"train image folder not found: {train_dir}")
    class_dirs = sorted(p for p in train_dir.iterdir() if p.is_dir() and not is_hidden(p.name))
    class_values = sort_class_values([p.name for p in class_dirs])
    # Folder per class value: "1.50" is the class 1.5, whose str() no longer names the folder.
    folder_of = dict(zip(_coerce_like(pd.Series([p.name for p in class_dirs]), class_values), class_dirs,
                         strict=True)) if class_dirs else {}
    rows = []
    for index, value in enumerate(class_values):
        folder = folder_of[value]
        images = list_images(folder)
        if not images:
            log.warning("class folder %s holds no images", folder)
        rows += [{"id": f"{folder.name}/{p.stem}", "path": p, "label": index} for p in images]
    if not rows:
        raise DataError(f"{train_dir}: the class folders hold no image files")
    if not test_dir.is_dir():
        raise DataError(f"test image folder not found: {test_dir}")
    test_images = list_images(test_dir)
    if not test_images:
        raise DataError(f"{test_dir}: no image files")
    test = pd.DataFrame({"id": [p.stem for p in test_images], "path": test_images})
    check_unique_ids(test, "id", test_dir)
    train = pd.DataFrame(rows)
    targets = pd.DataFrame({"id": train["id"], "label": [class_values[i] for i in train["label"]]})
    return Competition(
        name=data_dir.name, data_dir=data_dir, layout="imagefolder", train=train, test=test,
        class_values=class_values, id_column="id", target_columns=["label"], submission_kind="label",
        extra={"train_targets": targets})


def _save_classes(comp: Competition, paths: Paths) -> None:
    """Record the class vocabulary; a changed vocabulary under existing artefacts is refused."""
    payload = {"classes": comp.classes, "values": comp.class_values, "id_column": comp.id_column,
               "target_columns": comp.target_columns, "submission_kind": comp.submission_kind}
    path = paths.classes_json
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("classes") != comp.classes:
            raise DataError(f"{path}: the class list of {comp.data_dir} changed since the artefacts in "
                            f"{paths.comp_dir} were made; move that folder away to start afresh")
        if saved == payload:
            return
    write_text(path, json.dumps(payload, indent=1, default=str))


def auto_image_size(comp: Competition, cap: int, sample: int = 256, seed: int = 0) -> int:
    """Median short side of a sample of train images, rounded to a multiple of 8 and capped."""
    import cv2

    rng = np.random.default_rng(seed)
    paths = comp.train["path"].to_numpy()
    picks = rng.choice(len(paths), size=min(sample, len(paths)), replace=False)
    sides = []
    for i in picks:
        image = cv2.imread(str(paths[i]), cv2.IMREAD_UNCHANGED)
        if image is not None:
            sides.append(min(image.shape[:2]))
    if not sides:
        raise DataError(f"none of {len(picks)} sampled train images could be decoded")
    return size_from_sides(sides, cap)


def size_from_sides(sides, cap: int) -> int:
    """Median short side rounded to a multiple of 8, at least 8 and at most ``cap``."""
    side = int(np.median(sides))
    return int(min(cap, max(8, round(side / 8) * 8)))


def image_size(cfg: Config, comp: Competition) -> int:
    return cfg.data.image_size or auto_image_size(comp, cfg.data.max_auto_image_size)
