#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries when they are missing (tests/pg.py runs a throwaway
# server with initdb + pg_ctl on a temporary folder; nothing is started or configured here).
# Needs root or password-less sudo; exits non-zero when it cannot install.
set -euo pipefail

have_pg_server() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

have_pg_server && exit 0
command -v apt-get >/dev/null 2>&1 || { echo "setup_postgres: no apt-get; install PostgreSQL yourself" >&2; exit 1; }
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || { echo "setup_postgres: needs root or password-less sudo" >&2; exit 1; }
    sudo="sudo -n"
fi
echo "==> installing PostgreSQL (server binaries for tests/pg.py)" >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_pg_server
