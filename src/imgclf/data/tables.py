"""Reading the competition's CSVs: strings as written, ids matched to image files, labels checked
and sorted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.data.images import IMAGE_EXTENSIONS, list_images, list_non_images
from imgclf.errors import DataError


def read_csv_strings(path: Path, what: str | None = None) -> pd.DataFrame:
    """A CSV as it comes from a competition: every cell a string as written (``007`` stays
    ``007``), a UTF-8 byte-order mark dropped, CRLF or LF line ends, quoted fields, and spaces around
    column names and cells stripped (an empty cell is NaN). A missing, unparsable or empty file is a
    DataError naming it."""
    if not path.is_file():
        raise DataError(f"{what or path.name} not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig",
                            skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise DataError(f"{path}: no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        frame[column] = frame[column].str.strip().replace("", np.nan)
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
            matches = by_stem.get(image_id) or by_stem.get(Path(image_id).stem
                                                           if image_id.lower().endswith(IMAGE_EXTENSIONS)
                                                           else "")
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
        raise DataError(f"{csv_path} column '{column}': duplicate id '{first}' "
                        f"({int(dup.sum())} duplicates){hint}")


def check_labels(frame: pd.DataFrame, column: str, csv_path: Path, id_column: str) -> None:
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


def coerce_like(values: pd.Series, class_values: list) -> pd.Series:
    sample = class_values[0]
    if isinstance(sample, int):
        return values.astype(float).astype(int)
    if isinstance(sample, float):
        return values.astype(float)
    return values.astype(str)
