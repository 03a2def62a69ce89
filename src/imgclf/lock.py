"""One writing run at a time per folder: a lock file holding the owner's host name and pid.

A lock whose process is gone (killed, crashed; or its pid now belongs to a process that started
after the lock was taken) is stale and taken over, but only when it was
taken on this host: a pid on another machine sharing the folder (NFS) cannot be checked, so such
a lock counts as held and the error names that host.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from imgclf.atomic import TMP_PREFIX
from imgclf.errors import UserError


def pid_running(pid: int) -> bool:
    """Is a process with this pid running on this host (possibly a newer one that reused the pid)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), which tells a reused pid
    from the original process; None where that is unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, since: float | None = None) -> bool:
    """Is ``pid`` running, and (``since``: the lock file's mtime) not a newer process that got the
    pid of a dead lock holder? Pids are reused (pid_max is often 32768)."""
    if not pid_running(pid):
        return False
    started = _start_time(pid)
    return since is None or started is None or started <= since + 1.0


def _start_time(pid: int) -> float | None:
    """When ``pid`` started (seconds since the epoch); None where that is unknown."""
    ticks = process_start_ticks(pid)
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return None if ticks is None else boot + int(ticks) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration):
        return None


def _me() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def _try_create(path: Path) -> bool:
    """Create the lock file with its content in one step (a hard link of a filled temp file), so
    no other run ever reads an empty lock file and takes it for a stale one."""
    host, pid = _me()
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{pid}")
    tmp.write_text(f"{pid} {host}")
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: exclusive create, then write
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{pid} {host}")
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def read_owner(path: Path) -> tuple[str, int] | None:
    """(host, pid) written in the lock file; a bare pid (older lock files) means this host."""
    try:
        pid, _, host = path.read_text().strip().partition(" ")
        return (host or socket.gethostname()), int(pid)
    except (OSError, ValueError):
        return None


def clear_stale(path: Path) -> None:
    """Remove ``path`` if it is the lock of a dead process on this host (and leave any other)."""
    owner = read_owner(path)
    if owner is not None and owner[0] == socket.gethostname() and owner != _me() \
            and not _alive(owner[1], _mtime(path)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def hold_lock(path: Path, what: str | None = None) -> Iterator[None]:
    """Hold ``path`` while the block runs; ``what`` names the locked thing in the error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    what = what or str(path.parent)
    for _ in range(3):
        if _try_create(path):
            break
        owner = read_owner(path)
        if owner == _me():
            break
        if owner is not None and owner[0] != socket.gethostname():
            raise UserError(f"another run (pid {owner[1]} on host {owner[0]}) is using {what}; a lock from "
                            f"another host cannot be checked: if that run is gone, delete {path}")
        if owner is not None and owner[1] and _alive(owner[1], _mtime(path)):
            raise UserError(f"another run (pid {owner[1]}) is using {what}; wait for it or stop it "
                            f"(lock file {path})")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: its process on this host is gone
    else:
        raise UserError(f"could not take the lock {path}")
    try:
        yield
    finally:
        if read_owner(path) == _me():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
