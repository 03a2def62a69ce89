#!/usr/bin/env bash
# Creates .venv from requirements.txt when it is missing or out of date; otherwise does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
STAMP=.venv/.requirements.sha256
WANT="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -x .venv/bin/python && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    exit 0
fi
echo "setting up .venv from requirements.txt (first run: several minutes) ..." >&2
start=$(date +%s)
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
.venv/bin/python -c "import imgclf, torch, timm, albumentations, cv2, optuna, sklearn" 
echo "$WANT" > "$STAMP"
echo ".venv ready in $(( $(date +%s) - start )) s" >&2
