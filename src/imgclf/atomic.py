"""Crash-safe artefact writes: every file is written to a temp file in its folder, then renamed.

A reader therefore sees either the previous complete file or the new complete file, never a
half-written one. Temp files carry a ``.tmp-`` prefix so that stages can ignore leftovers (a run
killed mid-write leaves one behind; nothing reads it). A write that fails (disk full, quota, file
size limit, read-only folder) leaves the previous file as it was and is reported as one line.
Text writes whose content is already on disk touch nothing, so an idempotent rerun keeps mtimes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from imgclf.errors import UserError

TMP_PREFIX = ".tmp-"


def is_temp(path: str | os.PathLike) -> bool:
    """A leftover of an interrupted atomic write (never an artefact)."""
    return Path(path).name.startswith(TMP_PREFIX)


def remove_temps(folder: str | os.PathLike) -> int:
    """Delete the leftovers of interrupted writes directly in ``folder``; only for a folder whose lock
    the caller holds (a temp file there may otherwise be another run's write in progress)."""
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: torch.save, for one, reports a failed write as a RuntimeError."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    tmp_path: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + target.name + ".", dir=target.parent)
        tmp_path = Path(tmp)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; artefacts are meant to be shared
        os.close(fd)
        yield tmp_path
        os.replace(tmp_path, target)
    except Exception as exc:
        error = _os_error_in(exc)
        if error is None or isinstance(exc, UserError):
            raise
        raise UserError(f"cannot write {target}: {error.strerror or error} (errno {error.errno}); "
                        f"the previous {target.name}, if any, is unchanged") from exc
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unchanged(target: Path, data: bytes) -> bool:
    try:
        return target.stat().st_size == len(data) and target.read_bytes() == data
    except OSError:
        return False


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    if _unchanged(Path(target), data):
        return
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode())


def write_with(target: str | os.PathLike, writer: Callable[[Path], Any]) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)


def write_csv(target: str | os.PathLike, frame: Any, **kwargs: Any) -> None:
    """Write a pandas DataFrame atomically (``index=False`` unless given)."""
    kwargs.setdefault("index", False)
    write_text(target, frame.to_csv(None, **kwargs))


@contextlib.contextmanager
def open_atomic(target: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    with atomic_path(target) as tmp, open(tmp, mode) as handle:
        yield handle
