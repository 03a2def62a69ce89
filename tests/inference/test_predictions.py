"""Prediction files are read strictly by id: shuffled rows re-aligned; a missing, unknown,
duplicate or non-finite entry refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imgclf.errors import DataError
from imgclf.inference.predictions import aligned_probs


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.iloc[1:], "1 train id(s) missing, e.g. 'a'"),
    (lambda f: f.assign(id=f["id"].replace("c", "z")), "unknown id(s), e.g. 'z'"),
    (lambda f: pd.concat([f, f.iloc[[0]]]), "duplicate id 'a'"),
    (lambda f: f.assign(x=0.0), "unexpected column(s) ['x']"),
    (lambda f: f.assign(cat=np.nan), "NaN/inf probability in column 'cat'"),
])
def test_misaligned_predictions_are_refused(tmp_path, edit, message):
    ids = pd.Series(["a", "b", "c", "d"])
    frame = pd.DataFrame({"id": ids, "fold": [0, 1, 0, 1], "cat": [0.9, 0.2, 0.5, 0.1],
                          "dog": [0.1, 0.8, 0.5, 0.9]})
    good = tmp_path / "good.csv"
    frame.sample(frac=1.0, random_state=0).to_csv(good, index=False)  # shuffled rows are re-aligned by id
    probs, _ = aligned_probs(good, ids, ["cat", "dog"], "train")
    np.testing.assert_allclose(probs[:, 0], [0.9, 0.2, 0.5, 0.1])
    bad = tmp_path / "oof_tta.csv"
    edit(frame).to_csv(bad, index=False)
    with pytest.raises(DataError, match="oof_tta.csv") as err:
        aligned_probs(bad, ids, ["cat", "dog"], "train")
    assert message in str(err.value)
