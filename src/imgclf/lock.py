"""One writing run at a time per competition folder: a lock file holding the owner's pid.

A lock whose process is gone (killed, crashed) is stale and taken over.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    return True


@contextlib.contextmanager
def hold_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        if _try_create(path):
            break
        try:
            owner = int(path.read_text().strip() or "0")
        except (OSError, ValueError):
            owner = 0
        if owner == os.getpid():
            break
        if owner and _alive(owner):
            raise UserError(f"another run (pid {owner}) is using {path.parent}; wait for it or stop it "
                            f"(lock file {path})")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: its process is gone
    else:
        raise UserError(f"could not take the lock {path}")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if int(path.read_text().strip() or "0") == os.getpid():
                path.unlink()
