"""The CSV helpers: class values sorted as numbers or names, ids matched to files with clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imgclf.data.tables import check_unique_ids, read_csv_strings, resolve_image_paths, sort_class_values
from imgclf.errors import DataError


@pytest.mark.parametrize(("values", "expected"), [
    (["10", "9", "2", "9"], [2, 9, 10]),  # numbers sort as numbers and stay ints
    (["1.5", "0.5"], [0.5, 1.5]),
    (["07", "00", "42"], ["00", "07", "42"]),  # zero-padded: names, "0" and "00" stay apart
    (["dog", "cat", "10"], ["10", "cat", "dog"]),
])
def test_class_values_sort_as_numbers_or_as_names(values: list[str], expected: list) -> None:
    assert sort_class_values(values) == expected


def test_ids_with_or_without_extension_find_their_files(tmp_path: Path) -> None:
    for name in ("a.png", "b.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = resolve_image_paths(pd.Series(["a", "b.jpg"]), tmp_path, "train.csv")
    assert [p.name for p in found] == ["a.png", "b.jpg"]
    # rows are CSV lines: the header is line 1
    with pytest.raises(DataError, match=r"row 3: id 'notes' names .*notes.txt, which is not an image"):
        resolve_image_paths(pd.Series(["a", "notes"]), tmp_path, "train.csv")
    with pytest.raises(DataError, match=r"row 4: no image file for id 'zz'"):
        resolve_image_paths(pd.Series(["a", "b", "zz"]), tmp_path, "train.csv")


def test_empty_and_duplicate_ids_name_the_row_and_column(tmp_path: Path) -> None:
    csv = tmp_path / "train.csv"
    csv.write_text("image,label\na,1\n,2\n")
    with pytest.raises(DataError, match=r"column 'image': empty id at row 3"):
        check_unique_ids(read_csv_strings(csv), "image", csv)
    csv.write_text("image,label\na,1\na,2\n")
    with pytest.raises(DataError, match=r"duplicate id 'a' \(1 duplicates\)"):
        check_unique_ids(read_csv_strings(csv), "image", csv)
    csv.write_text("image,label\n")
    with pytest.raises(DataError, match="no rows"):
        read_csv_strings(csv)
