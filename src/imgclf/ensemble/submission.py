"""The submission file: built from sample_submission's ids and columns, validated, then written.

Kinds (``Competition.submission_kind``): ``label`` (and ``mask``) -> the class value, in train.csv's
vocabulary and dtype, in the single target column; ``binary_proba`` -> the positive (second) class's
probability; ``proba`` -> one probability column per class in sample_submission's column order.
Multi-label: ``tags`` -> the labels at or above their thresholds, space-separated, in vocabulary
order; ``multi_proba`` -> one probability column per label. Ordinal: ``grade`` -> the grade (train.csv's
integer vocabulary) of each grade index; regression: ``value`` -> the number.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from imgclf.atomic import write_text
from imgclf.data.competition import Competition
from imgclf.errors import DataError
from imgclf.paths import Paths
from imgclf.thresholds import binarise

log = logging.getLogger(__name__)

LABEL_KINDS = ("label", "mask")
VERSION_RE = re.compile(r"^submission_v(\d+)\.csv$")


def submission_template(comp: Competition) -> pd.DataFrame:
    """sample_submission (or, without one, ``id,label`` over the test files) in its row order."""
    if comp.sample_submission is not None:
        return comp.sample_submission.copy()
    return pd.DataFrame({"id": comp.test["id"].astype(str).to_numpy(), "label": ""})


Decision = tuple[np.ndarray, bool]  # multi-label tags: per-label thresholds, at-least-one rule


def build_submission(comp: Competition, probs: np.ndarray, decision: Decision | None = None) -> pd.DataFrame:
    """Fill the template from test probabilities whose rows follow ``comp.test``; a ``tags``
    submission needs the ``decision`` that turns probabilities into labels."""
    template = submission_template(comp)
    id_col, targets = template.columns[0], list(template.columns[1:])
    row_of = {i: n for n, i in enumerate(comp.test["id"].astype(str))}
    ids = template[id_col].astype(str)
    missing = [i for i in ids if i not in row_of]
    if missing or len(ids) != len(row_of):
        raise DataError(f"the test predictions do not cover the submission ids (e.g. '{missing[:1]}')")
    probs = np.asarray(probs, dtype=float)[[row_of[i] for i in ids]]
    out = pd.DataFrame({id_col: template[id_col].to_numpy()})
    kind = comp.submission_kind
    if kind in LABEL_KINDS:
        _single_target(targets, kind)
        out[targets[0]] = [comp.class_values[k] for k in probs.argmax(axis=1)]
    elif kind == "grade":  # grade indices -> the grades train.csv spells
        _single_target(targets, kind)
        out[targets[0]] = [comp.class_values[int(k)] for k in probs[:, 0]]
    elif kind == "value":
        _single_target(targets, kind)
        out[targets[0]] = probs[:, 0]
    elif kind == "binary_proba":
        _single_target(targets, kind)
        if probs.shape[1] != 2:
            raise DataError(f"binary_proba submission needs 2 classes, the competition has {probs.shape[1]}")
        out[targets[0]] = probs[:, 1]
    elif kind == "tags":
        _single_target(targets, kind)
        if decision is None:
            raise DataError("a tags submission needs thresholds")
        chosen = binarise(probs, *decision)
        out[targets[0]] = [" ".join(comp.classes[k] for k in np.flatnonzero(row)) for row in chosen]
    elif kind in ("proba", "multi_proba"):
        index = {c: k for k, c in enumerate(comp.classes)}
        unknown = [c for c in targets if c not in index]
        if unknown:
            raise DataError(f"sample_submission column(s) {unknown[:5]} are not classes {comp.classes[:10]}")
        for column in targets:
            out[column] = probs[:, index[column]]
    else:
        raise DataError(f"unknown submission kind '{kind}'")
    return out


def _single_target(targets: list[str], kind: str) -> None:
    if len(targets) != 1:
        raise DataError(f"a '{kind}' submission needs one target column, sample_submission has {targets}")


def validate_submission(frame: pd.DataFrame, comp: Competition, name: str = "submission") -> None:
    """Same columns, ids and order as the template, no NaN, values allowed for the kind."""
    template = submission_template(comp)
    want_cols, got_cols = list(template.columns), list(frame.columns)
    if got_cols != want_cols:
        extra = [c for c in got_cols if c not in want_cols]
        lost = [c for c in want_cols if c not in got_cols]
        what = f"extra {extra}" if extra else f"missing {lost}" if lost else "a different order"
        raise DataError(f"{name}: columns {got_cols} differ from {want_cols} ({what})")
    id_col = want_cols[0]
    want_ids, got_ids = template[id_col].astype(str).tolist(), frame[id_col].astype(str).tolist()
    if got_ids != want_ids:
        got_set, want_set = set(got_ids), set(want_ids)
        lost = [i for i in want_ids if i not in got_set]
        extra = [i for i in got_ids if i not in want_set]
        what = (f"missing id '{lost[0]}' ({len(lost)} missing)" if lost else
                f"unknown id '{extra[0]}'" if extra else
                "rows not in sample_submission's order or duplicated")
        raise DataError(f"{name}: column '{id_col}' differs from the sample submission's ids: {what}")
    nan = frame.isna().to_numpy()
    if nan.any():
        row, col = np.argwhere(nan)[0]
        raise DataError(f"{name}: NaN in column '{got_cols[col]}' at id '{got_ids[row]}'")
    values = frame[want_cols[1:]]
    if comp.submission_kind == "tags":
        _check_tags(values.iloc[:, 0], comp, name, got_ids)
        return
    if comp.submission_kind == "value":
        return _check_values(values.iloc[:, 0], comp, name)
    if comp.submission_kind in (*LABEL_KINDS, "grade"):
        return _check_labels(values.iloc[:, 0], comp, name)
    try:
        numbers = values.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{name}: non-numeric probability in columns {want_cols[1:]}") from None
    if (numbers < 0).any() or (numbers > 1).any():
        raise DataError(f"{name}: probabilities outside [0, 1] in columns {want_cols[1:]}")
    if comp.submission_kind == "proba":
        sums = numbers.sum(axis=1)
        off = np.abs(sums - 1.0) > 1e-3
        if off.any():
            row = int(np.argmax(off))
            raise DataError(f"{name}: probabilities of id '{got_ids[row]}' sum to {sums[row]:.4f}, not 1")


def _check_labels(labels: pd.Series, comp: Competition, name: str) -> None:
    """Labels (grades) in train.csv's vocabulary, integers when train.csv's are."""
    if all(isinstance(v, int) for v in comp.class_values) and not pd.api.types.is_integer_dtype(labels):
        raise DataError(f"{name}: column '{labels.name}' must hold integer labels like train.csv's "
                        f"(got dtype {labels.dtype})")
    allowed = set(comp.class_values)
    bad = [v for v in labels if v not in allowed]
    if bad:
        raise DataError(f"{name}: label {bad[0]!r} in column '{labels.name}' is not one of the classes "
                        f"{comp.class_values[:10]}")


def _check_values(column: pd.Series, comp: Competition, name: str) -> None:
    """A regression submission: finite numbers within the range of the train targets."""
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    targets = np.asarray(comp.labels, dtype=float)
    if not np.isfinite(numbers).all():
        raise DataError(f"{name}: non-numeric or infinite value in column '{column.name}'")
    if numbers.min() < targets.min() or numbers.max() > targets.max():
        raise DataError(f"{name}: values of column '{column.name}' outside the train targets' range "
                        f"[{targets.min():.4g}, {targets.max():.4g}]")


def _check_tags(column: pd.Series, comp: Competition, name: str, ids: list[str]) -> None:
    """Every tag of a tags submission is a label of the vocabulary."""
    allowed = set(comp.classes)
    for row, text in enumerate(column):
        bad = [t for t in str(text).split() if t not in allowed]
        if not isinstance(text, str) or bad:
            raise DataError(f"{name}: label {bad[:1] or [text]} in column '{column.name}' at id "
                            f"'{ids[row]}' is not in the label vocabulary {comp.classes[:10]}")


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def latest_version(paths: Paths) -> int:
    if not paths.submissions_dir.is_dir():
        return 0
    found = [int(m.group(1)) for p in paths.submissions_dir.iterdir() if (m := VERSION_RE.match(p.name))]
    return max(found, default=0)


def write_submissions(paths: Paths, comp: Competition, final: pd.DataFrame,
                      alternatives: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Validate everything first (nothing is written if one fails), then write atomically.

    submission.csv is the final one; a numbered copy is added beside it unless the latest numbered
    copy already holds the same content; alternatives go to ``alternatives/<name>.csv``.
    """
    validate_submission(final, comp, "final submission")
    for name, frame in alternatives.items():
        validate_submission(frame, comp, f"alternative submission '{name}'")
    text = csv_text(final)
    latest = latest_version(paths)
    write_text(paths.submission_csv, text)
    if latest and paths.submission_version_csv(latest).read_text() == text:
        version_file = paths.submission_version_csv(latest)
        log.info("submission unchanged since %s: no new version", version_file.name)
    else:
        version_file = paths.submission_version_csv(latest + 1)
        write_text(version_file, text)
    for name, frame in alternatives.items():
        write_text(paths.alternative_csv(name), csv_text(frame))
    return {"submission": str(paths.submission_csv), "version": str(version_file)}
