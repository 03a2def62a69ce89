"""The CSV helpers: class values sorted as numbers or names, ids matched to files with clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imgclf.data.tables import check_unique_ids, read_csv_strings, resolve_image_paths, sort_class_values
from imgclf.errors import DataError
from tests.helpers.filekinds import write_csv_as_it_comes


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


def test_csv_as_it_comes_bom_crlf_quotes_spaces_and_leading_zeros(tmp_path: Path) -> None:
    frame = pd.DataFrame({"image_id": ["007", "0042", "a, b", "x y"], "label": ["cat", "dog", "cat", "fox"]})
    write_csv_as_it_comes(frame, tmp_path / "train.csv")
    raw = (tmp_path / "train.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and b'"007  "' in raw
    read = read_csv_strings(tmp_path / "train.csv")
    assert list(read.columns) == ["image_id", "label"]
    assert read["image_id"].tolist() == ["007", "0042", "a, b", "x y"]  # strings, as written
    assert read["label"].tolist() == ["cat", "dog", "cat", "fox"]
    (tmp_path / "blank.csv").write_text("id,label\r\na,   \r\nb,dog\r\n")
    assert read_csv_strings(tmp_path / "blank.csv")["label"].isna().tolist() == [True, False]
