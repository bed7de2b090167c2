"""One writer per experiment: a lock row with holder, heartbeat, expiry and a fencing token.

The row lives in the trial store itself (table ``writer_locks``), so every process that can
write trials sees it, and the lock check and a trial write share one transaction.

* ``acquire`` takes a free, released or expired lock and bumps its token (a takeover of an
  expired lock is logged); a live lock of another holder raises :class:`WriterLockedError`
  naming the holder and its start time. A lock is live while its last heartbeat is younger than
  the ttl its holder declared.
* The token only ever grows. A :class:`~tuner.store.TrialStore` that holds a lock checks, inside
  each write transaction for that experiment, that the stored token is still its own, and raises
  :class:`LockLostError` otherwise: a writer whose lock was taken over (it paused past its ttl,
  say) cannot write again, even if it does not yet know it lost.
* An expired lock that nobody took over is still its holder's: its heartbeat refreshes it.
* A lock whose holder is a process of this host that no longer exists (a tuner killed with
  SIGKILL, then started again) is taken at once, as a stale pid file would be: a restarted tuner
  resumes without waiting out the ttl. Holders on other hosts always wait for the ttl.

How ``tuneloop tune`` should use it::

    store = TrialStore(db, clock)
    with store.acquire_writer(exp.name, ttl_s=...) as lock:   # before preflight
        ...                                                   # preflight, resume
        for each trial:
            lock.heartbeat()                                  # once per trial
            ...
    # released at the end (or on error); a crash leaves it to expire after ttl_s

The ttl must exceed the longest trial (warm-up plus measurement window plus apply time), since
the heartbeat comes once per trial, and dwarf the clock skew between the hosts that may run the
tuner, since a claimant compares its own clock with the holder's last heartbeat. A
``WriterLockedError`` means another tuner runs the same experiment: exit non-zero and say so,
without touching the system. A ``LockLostError`` means this one must stop at once, leaving the
trial in flight to the new holder's crash recovery.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from tuneloop.clock import Clock
from tuner.store_errors import LockLostError, StoreError, WriterLockedError
from tuner.store_schema import immediate

log = logging.getLogger(__name__)

# A tuner's lock outlives a silent stretch this long; its waits heartbeat every 10 s.
WRITER_TTL_S = 120.0


def default_holder() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def utc_text(timestamp: float) -> str:
    """A timestamp as ``2026-12-01T10:00:00Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LockRow:
    """The stored state of one experiment's lock (``holder`` is None once released)."""

    holder: str | None
    started_at: float | None
    heartbeat_at: float | None
    ttl_s: float | None
    token: int

    def live(self, now: float) -> bool:
        if self.holder is None or self.heartbeat_at is None or self.ttl_s is None:
            return False
        return now - self.heartbeat_at < self.ttl_s


def exited_here(holder: str | None) -> bool:
    """True when ``holder`` is a ``host:pid`` of this host whose process no longer exists (a
    tuner killed with SIGKILL): its lock need not wait out the ttl. Any other holder (another
    host, a Lease identity, a live or unknowable process) is not known to be gone."""
    host, _, pid = (holder or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) <= 0:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False


def read_lock(db: sqlite3.Connection, experiment: str) -> LockRow | None:
    row = db.execute(
        "SELECT holder, started_at, heartbeat_at, ttl_s, token FROM writer_locks "
        "WHERE experiment = ?",
        (experiment,),
    ).fetchone()
    return None if row is None else LockRow(*tuple(row))


def check_token(db: sqlite3.Connection, experiment: str, token: int) -> None:
    """Inside a transaction: :class:`LockLostError` unless ``token`` still holds the lock."""
    row = read_lock(db, experiment)
    if row is not None and row.token == token and row.holder is not None:
        return
    if row is None:
        detail = "its lock row is gone"
    elif row.token != token and row.holder is not None and row.started_at is not None:
        detail = f"taken over by {row.holder} since {utc_text(row.started_at)} (token {row.token})"
    else:
        detail = "it was released"
    raise LockLostError(
        f"experiment {experiment!r}: this writer's lock (token {token}) is lost, {detail}; "
        "it must stop writing"
    )


def claim(db: sqlite3.Connection, experiment: str, holder: str, ttl_s: float, now: float) -> int:
    """Take the lock (call in a transaction); returns the new token."""
    row = read_lock(db, experiment)
    if row is not None and row.live(now) and not exited_here(row.holder):
        assert row.started_at is not None
        raise WriterLockedError(
            f"experiment {experiment!r} is being tuned by {row.holder} since "
            f"{utc_text(row.started_at)} (last heartbeat {utc_text(row.heartbeat_at or 0.0)}, "
            f"expires after {row.ttl_s:g}s without one)"
        )
    token = 1 if row is None else row.token + 1
    if row is not None and row.holder is not None:
        log.warning(
            "taking over the expired or orphaned writer lock of experiment %r from %s "
            "(last heartbeat %s, "
            "ttl %gs); new token %d",
            experiment,
            row.holder,
            utc_text(row.heartbeat_at or 0.0),
            row.ttl_s or 0.0,
            token,
        )
    db.execute(
        "INSERT INTO writer_locks (experiment, holder, started_at, heartbeat_at, ttl_s, token) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(experiment) DO UPDATE SET "
        "holder = excluded.holder, started_at = excluded.started_at, "
        "heartbeat_at = excluded.heartbeat_at, ttl_s = excluded.ttl_s, token = excluded.token",
        (experiment, holder, now, now, ttl_s, token),
    )
    return token


class WriterLock:
    """A held writer lock: ``heartbeat()`` while working, ``release()`` (or ``with``) at the end."""

    def __init__(
        self,
        db: sqlite3.Connection,
        now: Callable[[], float],
        experiment: str,
        holder: str,
        token: int,
        started_at: float,
        on_release: Callable[[WriterLock], None],
    ) -> None:
        self._db = db
        self._now = now
        self.experiment = experiment
        self.holder = holder
        self.token = token
        self.started_at = started_at
        self._on_release = on_release
        self.released = False

    def heartbeat(self) -> None:
        """Refresh the lock; :class:`LockLostError` if another holder took it over."""
        if self.released:
            raise StoreError(f"experiment {self.experiment!r}: heartbeat on a released lock")
        with immediate(self._db):
            check_token(self._db, self.experiment, self.token)
            self._db.execute(
                "UPDATE writer_locks SET heartbeat_at = ? WHERE experiment = ?",
                (self._now(), self.experiment),
            )

    def release(self) -> bool:
        """Free the lock; False (and nothing written) if it had already been lost."""
        if self.released:
            return False
        self.released = True
        self._on_release(self)
        with immediate(self._db):
            row = read_lock(self._db, self.experiment)
            if row is None or row.token != self.token or row.holder is None:
                log.warning(
                    "experiment %r: writer lock token %d was already lost; nothing to release",
                    self.experiment,
                    self.token,
                )
                return False
            self._db.execute(
                "UPDATE writer_locks SET holder = NULL, heartbeat_at = NULL WHERE experiment = ?",
                (self.experiment,),
            )
        return True

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"WriterLock({self.experiment!r}, holder={self.holder!r}, token={self.token})"


class HeartbeatClock:
    """A clock whose waits keep writer locks alive: the loop's sleeps heartbeat as they pass.

    The tuning loop waits through warm-ups, measurement windows, cooldowns and freeze windows on
    its clock, so heartbeating there (at most every ``every_s``, in slices no longer than that)
    keeps the locks live through a long wait without a thread touching the store's connection.
    """

    def __init__(self, clock: Clock, every_s: float = 10.0) -> None:
        self.clock = clock
        self.every_s = every_s
        self.locks: list[WriterLock] = []
        self._last = clock.now()

    def hold(self, lock: WriterLock) -> WriterLock:
        """Heartbeat ``lock`` from now on."""
        self.locks.append(lock)
        return lock

    def drop(self, lock: WriterLock) -> None:
        if lock in self.locks:
            self.locks.remove(lock)

    def now(self) -> float:
        return self.clock.now()

    def _beat(self) -> None:
        if self.clock.now() - self._last >= self.every_s:
            for lock in list(self.locks):
                lock.heartbeat()
            self._last = self.clock.now()

    def sleep(self, seconds: float) -> None:
        end = self.clock.now() + max(0.0, seconds)
        self._beat()
        while (left := end - self.clock.now()) > 0:
            self.clock.sleep(min(left, self.every_s))
            self._beat()
