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
# the training plan counts the run's time outside training from here (planning/run.py: run_elapsed)
export IMGCLF_RUN_STARTED="$start"

# Ctrl-C or SIGTERM (to this script alone, or to its whole process group) stops the running stage
# cleanly: it abandons the current epoch, keeps last.pt of the previous one and exits 130/143; the
# next stages do not start. Rerun the same command to resume. The stage runs in the background so
# that this script can forward a signal sent to it alone (bash runs traps only between commands).
child=""
stop() {
    trap '' INT TERM
    if [[ -n "$child" ]]; then
        kill -TERM "$child" 2>/dev/null || true  # a stage ignores any signal after its first one
        wait "$child" 2>/dev/null || true
    fi
    echo "run_all: stopped by SIG$1; rerun the same command to resume" >&2
    exit "$2"
}
trap 'stop INT 130' INT
trap 'stop TERM 143' TERM

stage() {
    echo "==> $*" >&2
    "$PY" "$@" &
    child=$!
    wait "$child"  # under set -e a failing stage ends the run with its exit status
    child=""
}

stage pipelines/01_eda.py "$@"
stage pipelines/02_folds.py "$@"
stage pipelines/03_train.py "$@"
stage pipelines/03_train.py --extra "$@"  # plan.extra_models: other architecture families for the ensemble
stage tune.py "$@"
stage pipelines/03_train.py --tuned "$@"
stage pipelines/05_infer.py "$@"
stage pipelines/05b_pseudo.py "$@"  # pseudo-labels / distillation: only when pseudo.enabled (off by default)
stage pipelines/06_ensemble.py "$@"
stage pipelines/07_score.py --auto "$@"
stage pipelines/08_report.py "$@"  # rebuilds the report; prints it, TensorBoard's and optuna-dashboard's commands
echo "run_all: done in $(( $(date +%s) - start )) s" >&2
