"""A throwaway PostgreSQL server for tests: initdb + pg_ctl on a temp folder and a free loopback port.

Uses Debian's server binaries (/usr/lib/postgresql/<version>/bin, installed by .ci/run when missing).
initdb refuses to run as root, so as root the server runs as the ``postgres`` system user. Tests
that need it skip, naming the reason, only when the binaries are not installed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def server_bin_dir() -> Path | None:
    """The newest folder holding both initdb and pg_ctl (PATH first, then Debian's layout)."""
    on_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(on_path):
        return Path(os.path.realpath(on_path[0])).parent
    dirs = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin")
            if (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file()]
    return max(dirs, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0) if dirs else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgServer:
    port: int
    user: str = "postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"


def _as_server_user(base: Path) -> list[str]:
    """Command prefix running as a non-root user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
    os.chown(base, entry.pw_uid, entry.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    bindir = server_bin_dir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's 'postgresql' "
                    "package (.ci/run does)")
    base = Path(tempfile.mkdtemp(prefix="imgclf-pg-"))  # under /tmp: pytest's tmp dirs are private to root
    prefix = _as_server_user(base)
    data, port = base / "data", _free_port()
    run = lambda *cmd: subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True,  # noqa: E731
                                      timeout=120)
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync",
            "-E", "UTF8", "--locale=C")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60",
            "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            "start")
    except subprocess.CalledProcessError as exc:
        log = (base / "server.log").read_text() if (base / "server.log").is_file() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr}\n{log}") from None
    try:
        yield PgServer(port)
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PgServer) -> str:
    """A fresh, empty database on the test server, as a SQLAlchemy URL for psycopg 3."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.url(name)
