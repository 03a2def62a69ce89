"""Where a study lives: a journal file on this machine (default), or a database for many machines.

- ``tune.storage: null`` -> ``models/<comp>/tune/journal.log`` (Optuna's JournalFileBackend: appends
  under a file lock, so processes on one machine share it safely; SQLite is not, per Optuna's docs).
- a file path (relative to the current folder) -> a journal file there (a network file system shared by
  machines works when it supports the lock's hard links/symlinks, e.g. NFSv3+).
- ``postgresql+psycopg://user:password@host:5432/db`` (``postgresql://`` is taken to mean psycopg 3,
  the driver in requirements.txt) or any other SQLAlchemy URL -> Optuna's RDBStorage with heartbeats:
  a trial whose worker stops beating for GRACE_S seconds (machine lost, kill -9) is marked FAIL.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from imgclf.errors import ConfigError, UserError
from imgclf.paths import Paths

log = logging.getLogger(__name__)
HEARTBEAT_S = 10
GRACE_S = 60
JOURNAL_LOCK_GRACE_S = 30  # a journal lock left by a killed process is broken after this long


def is_url(storage: str) -> bool:
    return "://" in storage


def normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def storage_label(storage: str | None, paths: Paths) -> str:
    """The storage as shown to users (never with a password)."""
    if storage is None:
        return str(paths.tune_journal)
    if not is_url(storage):
        return storage
    from sqlalchemy.engine import make_url  # only database URLs need SQLAlchemy

    try:
        return make_url(normalise_url(storage)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its credentials part
        return storage.split("://", 1)[0] + "://..."


def open_storage(storage: str | None, paths: Paths, attempts: int = 4) -> BaseStorage:
    if storage is None or not is_url(storage):
        path = paths.tune_journal if storage is None else Path(storage).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = JournalFileOpenLock(str(path), grace_period=JOURNAL_LOCK_GRACE_S)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    url = normalise_url(storage)
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs={"pool_pre_ping": True},
                                  heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except ImportError as exc:
            raise ConfigError(f"tune.storage: no database driver for {storage_label(storage, paths)} "
                              f"({exc})") from None
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy/driver errors of many kinds
            # Workers starting together race to create Optuna's tables; the loser retries.
            if attempt + 1 == attempts:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UserError(f"tune.storage: cannot open {storage_label(storage, paths)}: "
                                f"{first}") from None
            log.info("storage not ready (%s); retrying", type(exc).__name__)
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
