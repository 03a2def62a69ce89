"""The EDA's numbers: imbalance over present classes, duplicate sets with conflicting labels, shift."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imgclf.eda.analysis import duplicate_groups, imbalance_ratio, size_shift


def test_imbalance_ignores_absent_classes() -> None:
    assert imbalance_ratio(pd.Series([30, 0, 10, 5])) == 6.0


def test_duplicate_sets_across_splits_and_conflicting_labels() -> None:
    files = pd.DataFrame({"md5": ["m1", "m1", "m2", "m2", "m3", ""],
                          "split": ["train", "train", "train", "test", "train", "train"],
                          "id": ["a", "b", "c", "t1", "d", "e"], "label": [0, 1, 2, np.nan, 0, 0]})
    groups = duplicate_groups(files, ["cat", "dog", "fox"]).set_index("md5")
    assert list(groups.index) == ["m1", "m2"]  # unique files and zero-byte files are no duplicates
    assert groups.loc["m1", "conflicting_labels"] and groups.loc["m1", "labels"] == "cat dog"
    assert (groups.loc["m2", "n_train"], groups.loc["m2", "n_test"]) == (1, 1)
    assert not groups.loc["m2", "conflicting_labels"]


def test_a_test_set_of_larger_images_is_flagged_as_shifted() -> None:
    rng = np.random.default_rng(0)
    n = 200
    sides = np.concatenate([rng.integers(30, 34, n), rng.integers(60, 64, n)]).astype(float)
    files = pd.DataFrame({"split": ["train"] * n + ["test"] * n, "height": sides, "width": sides,
                          "bytes": sides * 10, **{f"mean_{c}": 0.5 for c in "rgb"}})
    shifted = {row["column"]: row["shifted"] for row in size_shift(files)}
    assert shifted["short_side"] and shifted["kb"] and not shifted["brightness"]
