"""Local leaderboard: the competition metric of a submission CSV against a solution CSV.

Both files are joined on their first column (the id). The solution holds labels (one column) or
one-hot class columns; the submission holds labels, one positive-class probability (binary), or one
probability column per class. Labels are compared as text, with integral numbers canonicalised
(``7`` == ``7.0``), so the scorer needs nothing but the two files.

Multi-label (a multi-label metric name, or a solution whose rows hold several labels): the solution
holds space-separated tags or one 0/1 column per label; the submission tags or one probability
column per label.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.data.tables import read_csv_strings, sort_class_values
from imgclf.errors import DataError, UserError
from imgclf.metrics import ALL_METRIC_NAMES, METRICS, MULTILABEL_METRICS, ORDINAL_METRICS, get_metric

log = logging.getLogger(__name__)


def _read(path: Path, what: str, allow_empty: bool = False) -> pd.DataFrame:
    frame = read_csv_strings(path, what)
    if frame.shape[1] < 2:
        raise DataError(f"{path}: expected an id column and at least one target column with rows")
    ids = frame.iloc[:, 0]
    if ids.isna().any() or ids.duplicated().any():
        raise DataError(f"{path}: column '{frame.columns[0]}' has empty or duplicate ids")
    nan = frame.isna().to_numpy()
    if allow_empty:  # multi-label tags: an image may be given no label
        return frame.fillna("").set_index(frame.columns[0])
    if nan.any():
        row, col = np.argwhere(nan)[0]
        raise DataError(f"{path}: empty/NaN value in column '{frame.columns[col]}' at id '{ids.iloc[row]}'")
    return frame.set_index(frame.columns[0])


def _canonical(values: pd.Series) -> pd.Series:
    """Integral numbers as ``str(int)``, everything else stripped text."""
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    integral = numbers.notna() & (numbers == numbers.round())
    return text.where(~integral, numbers.round().astype("Int64").astype(str))


def _as_probabilities(frame: pd.DataFrame, path: Path) -> np.ndarray:
    try:
        probs = frame.to_numpy(dtype=float)
    except ValueError:
        raise DataError(f"{path}: columns {list(frame.columns)} are not numeric probabilities") from None
    if (probs < 0).any() or (probs > 1).any():
        raise DataError(f"{path}: probabilities outside [0, 1]")
    return probs


def labels_and_probs(sub: pd.DataFrame, sol: pd.DataFrame, sub_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Class index per row and a probability matrix over the same class order."""
    if sol.shape[1] > 1:  # one-hot solution: its columns are the classes
        classes = [str(c) for c in sol.columns]
        labels = sol.to_numpy(dtype=float).argmax(axis=1)
    else:
        truth = _canonical(sol.iloc[:, 0])
        classes = [str(v) for v in sort_class_values(sorted(set(truth)))]
        labels = None
    if sub.shape[1] > 1:  # one probability column per class
        index = {c: k for k, c in enumerate(sub.columns.astype(str))}
        missing = [c for c in classes if c not in index]
        if missing:
            raise DataError(f"{sub_path}: no probability column for class(es) {missing[:5]}")
        probs = _as_probabilities(sub, sub_path)
        if labels is None:
            labels = np.array([index[v] for v in truth])
        else:
            probs = probs[:, [index[c] for c in classes]]
        return labels, probs
    if labels is None:
        labels = np.array([classes.index(v) for v in truth])
    column = _canonical(sub.iloc[:, 0])
    if column.isin(classes).all():  # a label submission; unknown labels would just score as wrong
        return labels, np.eye(len(classes))[[classes.index(v) for v in column]]
    if len(classes) == 2 and pd.to_numeric(column, errors="coerce").notna().all():
        positive = _as_probabilities(sub.iloc[:, [0]], sub_path)[:, 0]
        return labels, np.column_stack([1.0 - positive, positive])
    unknown = sorted(set(column) - set(classes))
    extra = np.eye(len(classes) + len(unknown))
    vocab = classes + unknown
    log.warning("%s: %d label(s) not in the solution's vocabulary (e.g. %r)", sub_path, len(unknown),
                unknown[0])
    return labels, extra[[vocab.index(v) for v in column]]


def _is_multilabel(sol: pd.DataFrame, metric_name: str) -> bool:
    if metric_name not in METRICS:
        return True
    if metric_name not in MULTILABEL_METRICS:
        return False
    if sol.shape[1] == 1:
        return int((sol.iloc[:, 0].astype(str).str.split().str.len() > 1).sum()) >= 2
    numbers = sol.apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy()
    return int(((numbers != 0).sum(axis=1) != 1).sum()) >= 2


def _tags_matrix(column: pd.Series, vocab: list[str]) -> np.ndarray:
    index = {t: k for k, t in enumerate(vocab)}
    out = np.zeros((len(column), len(vocab)))
    for n, text in enumerate(column.astype(str)):
        out[n, [index[t] for t in text.split() if t in index]] = 1
    return out


def multilabel_arrays(sub: pd.DataFrame, sol: pd.DataFrame, sub_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The solution's 0/1 label matrix and the submission's probabilities (tags: 0/1) over its labels."""
    if sol.shape[1] == 1:
        vocab = sorted({t for text in sol.iloc[:, 0].astype(str) for t in text.split()})
        labels = _tags_matrix(sol.iloc[:, 0], vocab)
    else:
        vocab = [str(c) for c in sol.columns]
        labels = sol.to_numpy(dtype=float)
    if sub.shape[1] == 1:
        unknown = sorted({t for text in sub.iloc[:, 0].astype(str) for t in text.split()} - set(vocab))
        if unknown:
            log.warning("%s: label(s) %s are not in the solution's vocabulary", sub_path, unknown[:5])
        return labels, _tags_matrix(sub.iloc[:, 0], vocab)
    missing = [c for c in vocab if c not in sub.columns.astype(str)]
    if missing:
        raise DataError(f"{sub_path}: no probability column for label(s) {missing[:5]}")
    sub.columns = sub.columns.astype(str)
    return labels, _as_probabilities(sub[vocab], sub_path)


def score_submission(submission: Path, solution: Path, metric_name: str) -> float:
    if metric_name not in ALL_METRIC_NAMES:
        known = ", ".join(sorted(ALL_METRIC_NAMES))
        raise UserError(f"--metric: unknown metric '{metric_name}'; known: {known}")
    sol = _read(solution, "solution")
    if metric_name in ORDINAL_METRICS and metric_name not in METRICS:  # qwk, kappa, rmse, mae
        return _score_numbers(_read(submission, "submission"), sol, submission, solution, metric_name)
    multi = _is_multilabel(sol, metric_name)
    sub = _read(submission, "submission", allow_empty=multi)
    lost, extra = sol.index.difference(sub.index), sub.index.difference(sol.index)
    if len(lost) or len(extra):
        detail = (f"{len(lost)} solution id(s) missing, e.g. '{lost[0]}'" if len(lost) else
                  f"{len(extra)} id(s) not in the solution, e.g. '{extra[0]}'")
        raise DataError(f"{submission}: ids differ from {solution} ({detail})")
    sub = sub.loc[sol.index]
    if multi:
        if metric_name not in MULTILABEL_METRICS:
            raise UserError(f"--metric: '{metric_name}' is not a multi-label metric (known: "
                            f"{', '.join(sorted(MULTILABEL_METRICS))})")
        labels, probs = multilabel_arrays(sub, sol, submission)
        return get_metric(metric_name, "multi_label")(labels, probs)
    labels, probs = labels_and_probs(sub, sol, submission)
    metric = get_metric(metric_name)
    if metric.needs_proba and sub.shape[1] == 1 and probs.max(axis=1).min() == 1.0 and probs.shape[1] > 2:
        log.warning("%s holds labels: %s is computed on one-hot probabilities", submission, metric_name)
    return metric(labels, probs)


def _score_numbers(sub: pd.DataFrame, sol: pd.DataFrame, sub_path: Path, sol_path: Path,
                   metric_name: str) -> float:
    """Grades (qwk, linear_kappa) or values (rmse, mae) of the one target column, matched by id."""
    lost = sol.index.difference(sub.index)
    if len(lost) or len(sub) != len(sol):
        raise DataError(f"{sub_path}: ids differ from {sol_path}")
    sub = sub.loc[sol.index]
    truth = pd.to_numeric(sol.iloc[:, 0], errors="coerce").to_numpy(dtype=float)
    pred = pd.to_numeric(sub.iloc[:, 0], errors="coerce").to_numpy(dtype=float)
    if not (np.isfinite(truth).all() and np.isfinite(pred).all()):
        raise DataError(f"{sub_path}: a non-numeric value in column '{sub.columns[0]}'")
    return ORDINAL_METRICS[metric_name](truth, pred)
