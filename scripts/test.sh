#!/usr/bin/env bash
# Sets up .venv if needed (and, where it can, the PostgreSQL server the Optuna-on-PostgreSQL tests
# start and the headless chromium the report.html test renders in), then runs the linter and the
# whole test suite (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_postgres.sh || echo "warning: no PostgreSQL server; its tests will be skipped" >&2
bash scripts/setup_chromium.sh || echo "warning: no chromium; the report.html browser test will be skipped" >&2
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
