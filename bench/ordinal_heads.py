"""OOF QWK of ordinal experiments already trained on one folder, rounded and with cut-points
cross-fitted on the folds; a single-label experiment's OOF (one probability column per grade) is
scored by its argmax, as a plain classifier is.

    python bench/ordinal_heads.py DATA_DIR MODELS_COMP_DIR [MODELS_COMP_DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.cutpoints import fit_cutpoints
from imgclf.metrics import get_metric


def main(data: Path, comp_dirs: list[Path]) -> None:
    train = pd.read_csv(data / "train.csv", dtype=str)
    id_col, target = train.columns[:2]
    truth = train.set_index(id_col)[target].astype(int)
    qwk = get_metric("qwk", "ordinal")
    for comp_dir in comp_dirs:
        for oof_csv in sorted(comp_dir.glob("*/oof.csv")):
            oof = pd.read_csv(oof_csv, dtype={"id": str})
            labels = truth.loc[oof["id"]].to_numpy()
            if "prediction" in oof.columns:
                fit = fit_cutpoints(labels, oof["prediction"].to_numpy(), oof["fold"].to_numpy(), 5, qwk)
                print(f"{oof_csv.parent.name:24s} rounded {fit.rounded_score:.4f}  cut-points (cross-fitted) "
                      f"{fit.cross_fitted_score:.4f}  in-sample {fit.in_sample_score:.4f}  "
                      f"cuts {np.round(fit.cuts, 2).tolist()}")
            else:
                grades = oof[[str(k) for k in range(5)]].to_numpy().argmax(axis=1)
                print(f"{oof_csv.parent.name:24s} argmax {qwk(labels, grades):.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
