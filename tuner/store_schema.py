"""Opening a trial store: integrity checks, schema versions and migrations.

Design decisions:

* The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[n]`` takes a store from
  version ``n`` to ``n + 1``; each runs in one ``BEGIN IMMEDIATE`` transaction that also bumps
  the version, so a crash leaves the old version or the new, never half of one. The version is
  re-read inside that transaction, so two processes opening an old store at once migrate it once.
* Version 1 is the original schema (``experiments``, ``snapshots``, ``trials``). Stores written
  before versions existed say ``user_version = 0`` but hold those tables; they are read as 1.
* Version 2 adds ``writer_locks`` (one row per experiment: holder, start, heartbeat, ttl and a
  fencing token that only ever grows) and ``experiments.initial_snapshot_at`` (when the first
  initial snapshot was recorded; back-filled from the snapshots already there).
* A store from a newer version is refused before anything is written to it.
* A damaged store is an error, never a fresh start: a 0-byte file, random bytes, a truncated
  file, a failing ``PRAGMA quick_check`` or a missing table raise :class:`StoreDamagedError`
  with one line that names the file and what to do. Only a path with no file creates a store.
* A new store is built under a temporary name in the same directory, fsynced and then linked
  into place (``os.link`` fails if the name exists, so two creators never overwrite each
  other). The store's own path therefore never holds a half-built or empty database, which is
  what makes "a 0-byte file is damage" a safe rule.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tuneloop.durable import fsync_dir
from tuner.store_errors import (
    RECOVERY_HINT,
    StoreDamagedError,
    StoreError,
    StoreVersionError,
)

_V1 = (
    "CREATE TABLE experiments (name TEXT PRIMARY KEY, spec TEXT NOT NULL, "
    "created_at REAL NOT NULL, updated_at REAL NOT NULL, incumbent_trial INTEGER, "
    "incumbent_value REAL)",
    "CREATE TABLE snapshots (id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, "
    "label TEXT NOT NULL, applier TEXT NOT NULL, data TEXT NOT NULL, taken_at REAL NOT NULL, "
    "UNIQUE (experiment, label, applier))",
    "CREATE TABLE trials (id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, "
    "number INTEGER NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, params TEXT NOT NULL, "
    "snapshot TEXT NOT NULL, objective REAL, loss REAL, "
    "measurements TEXT NOT NULL DEFAULT '{}', valid INTEGER, feasible INTEGER, reason TEXT, "
    "applied INTEGER NOT NULL DEFAULT 0, rolled_back INTEGER NOT NULL DEFAULT 0, "
    "proposed_at REAL NOT NULL, applied_at REAL, finished_at REAL, updated_at REAL NOT NULL)",
    "CREATE INDEX trials_by_experiment ON trials (experiment, number)",
)

_V2 = (
    "CREATE TABLE writer_locks (experiment TEXT PRIMARY KEY, holder TEXT, started_at REAL, "
    "heartbeat_at REAL, ttl_s REAL, token INTEGER NOT NULL)",
    "ALTER TABLE experiments ADD COLUMN initial_snapshot_at REAL",
    "UPDATE experiments SET initial_snapshot_at = (SELECT MIN(taken_at) FROM snapshots "
    "WHERE snapshots.experiment = experiments.name AND snapshots.label = 'initial')",
)


def _script(statements: tuple[str, ...]) -> Callable[[sqlite3.Connection], None]:
    def run(db: sqlite3.Connection) -> None:
        for statement in statements:
            db.execute(statement)

    return run


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_script(_V1), _script(_V2))
SCHEMA_VERSION = len(MIGRATIONS)
TABLES: dict[int, frozenset[str]] = {
    1: frozenset({"experiments", "snapshots", "trials"}),
    2: frozenset({"experiments", "snapshots", "trials", "writer_locks"}),
}


@contextlib.contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _damaged(path: Path, what: str) -> StoreDamagedError:
    return StoreDamagedError(f"trial store {path} {what}: {RECOVERY_HINT}")


def _tables(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(r[0]) for r in rows}


def stored_version(db: sqlite3.Connection, path: Path) -> int:
    """The store's schema version (0: an empty database); refuses newer or foreign files."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"trial store {path} was written by a newer tuneloop: schema {version}, "
            f"this one knows {SCHEMA_VERSION}; run a newer tuneloop (the store is left as it is)"
        )
    tables = _tables(db)
    if version == 0:
        if not tables:
            return 0
        version = 1  # written before schema versions existed
    missing = sorted(TABLES[version] - tables)
    if missing:
        raise _damaged(path, f"(schema {version}) lacks the table(s) {', '.join(missing)}")
    return version


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    while True:
        with immediate(db):
            version = stored_version(db, path)
            if version == SCHEMA_VERSION:
                return
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")


def _create(path: Path) -> None:
    """Build an empty store of the current schema next to ``path`` and link it into place."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o644)
        db = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            _migrate(db, tmp)
        finally:
            db.close()  # the last connection checkpoints the WAL into the file
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        _link_into_place(tmp, path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    fsync_dir(path.parent)


def _link_into_place(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        return  # another creator won: use theirs
    except OSError:  # a filesystem without hard links: rename, unless a store appeared
        if not path.exists():
            os.rename(tmp, path)


def _check_integrity(db: sqlite3.Connection, path: Path) -> None:
    problems = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise _damaged(path, f"fails its integrity check ({problems[0]})")


def open_store(path: Path, timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open (creating only where no file exists), check and migrate the store at ``path``."""
    if not path.exists():
        _create(path)
    elif path.is_file() and path.stat().st_size == 0:
        raise _damaged(path, "is empty (0 bytes), so its trials and initial snapshot are lost")
    try:
        # The process that opens the store may hand it to the thread that tunes (the
        # controller's, under a Lease); one thread uses it at a time.
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw",
            uri=True,
            timeout=timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open trial store {path}: {exc}") from exc
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=FULL")
        if stored_version(db, path) == 0:
            raise _damaged(path, "holds none of the trial store's tables")
        _check_integrity(db, path)
        db.execute("PRAGMA journal_mode=WAL")
        _migrate(db, path)
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.OperationalError):
            raise StoreError(f"cannot open trial store {path}: {exc}") from exc
        if isinstance(exc, sqlite3.DatabaseError):
            raise _damaged(path, f"is damaged ({exc})") from exc
        raise
    return db
