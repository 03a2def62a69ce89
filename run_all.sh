#!/usr/bin/env bash
# Runs every stage in order on a competition folder (default: the embedded digits demo).
# Usage: bash run_all.sh [--data DIR] [--config FILE] [--set KEY=VALUE ...]
# Sets up .venv first when the packages are missing. Rerunning continues where a run stopped:
# finished folds, trials and predictions are reused, not recomputed.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
PY=.venv/bin/python
start=$(date +%s)

stage() {
    echo "==> $*" >&2
    "$PY" "$@"
}

stage pipelines/01_eda.py "$@"
stage pipelines/02_folds.py "$@"
stage pipelines/03_train.py "$@"
stage tune.py "$@"
stage pipelines/03_train.py --tuned "$@"
stage pipelines/05_infer.py "$@"
stage pipelines/06_ensemble.py "$@"
stage pipelines/07_score.py --auto "$@"
echo "run_all: done in $(( $(date +%s) - start )) s" >&2
