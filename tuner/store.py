"""Durable trial store (SQLite, WAL, ``synchronous=FULL``): every step is on disk before the next.

Tables: ``experiments`` (spec text, incumbent, when the initial snapshot was taken),
``snapshots`` (the state of every touched object before the first change, per applier, for
``tuneloop rollback --to initial``), ``trials``, one row per trial moving through the checked
state machine of :mod:`tuner.trial_state`::

    proposed -> applying -> applied -> measuring -> done | invalid | infeasible
        \\-> advised      \\-> rolled_back (from any non-final state)

and ``writer_locks`` (:mod:`tuner.writer_lock`). A trial row holds its params, the pre-apply
snapshot of its targets, measurements, validity, whether it was applied and rolled back, and the
times of each step. ``kind`` is ``trial`` (a strategy proposal), ``incumbent`` (a re-measurement
of the best before a new best is promoted), ``baseline`` (advisory mode: the current
configuration measured without changing it), ``advice`` (advisory mode's recommendation) or
``final`` (applying the best at the end).

The store is evidence, so:

* opening checks integrity and migrates old schemas (:mod:`tuner.store_schema`); a damaged file
  is an error naming the file, never a fresh start;
* the initial snapshot of an applier is written once and never replaced (a later one is dropped
  and logged), and the experiment records when it was taken, so a store that lost those rows
  says so instead of offering no snapshot;
* a store that holds an experiment's writer lock checks its fencing token inside every write
  transaction for that experiment, so a writer that lost the lock cannot write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneloop.clock import Clock
from tuner.store_errors import (
    LockLostError,
    StoreDamagedError,
    StoreError,
    StoreVersionError,
    WriterLockedError,
)
from tuner.store_schema import SCHEMA_VERSION, immediate, open_store
from tuner.trial_state import FINAL_STATES, IN_FLIGHT_STATES, TRANSITIONS, TrialState
from tuner.writer_lock import WriterLock, check_token, claim, default_holder, utc_text

__all__ = [
    "FINAL",
    "IN_FLIGHT",
    "SCHEMA_VERSION",
    "TRANSITIONS",
    "LockLostError",
    "StoreDamagedError",
    "StoreError",
    "StoreVersionError",
    "Trial",
    "TrialStore",
    "WriterLock",
    "WriterLockedError",
]

log = logging.getLogger(__name__)

# Ordered tuples (usable as SQL parameters) of the states in tuner.trial_state.
FINAL: tuple[TrialState, ...] = tuple(s for s in TrialState if s in FINAL_STATES)
IN_FLIGHT: tuple[TrialState, ...] = tuple(s for s in TrialState if s in IN_FLIGHT_STATES)
# Columns a transition may set besides the state and the times it sets itself.
_SETTABLE = frozenset(
    {"kind", "params", "snapshot", "objective", "loss", "measurements", "valid", "feasible",
     "reason", "applied", "rolled_back", "applied_at", "finished_at"}
)  # fmt: skip


@dataclass(frozen=True)
class Trial:
    id: int
    experiment: str
    number: int
    kind: str
    state: str
    params: dict[str, Any]
    snapshot: dict[str, Any]
    objective: float | None
    loss: float | None
    measurements: dict[str, Any]
    valid: bool | None
    feasible: bool | None
    reason: str | None
    applied: bool
    rolled_back: bool
    proposed_at: float
    applied_at: float | None
    finished_at: float | None

    @property
    def final(self) -> bool:
        return self.state in FINAL


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


class TrialStore:
    """One SQLite file holding every experiment's trials."""

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._now = clock.now if clock is not None else time.time
        self._db = open_store(self.path)
        self._locks: dict[str, WriterLock] = {}

    def close(self) -> None:
        """Release the writer locks this store holds, then close the file."""
        for lock in list(self._locks.values()):
            lock.release()
        self._db.close()

    @contextlib.contextmanager
    def _writing(self, experiment: str) -> Iterator[sqlite3.Connection]:
        """A write transaction, fenced when this store holds ``experiment``'s writer lock."""
        with immediate(self._db) as db:
            self._fence(experiment)
            yield db

    def _fence(self, experiment: str) -> None:
        """Inside a transaction: refuse to write if this store lost ``experiment``'s lock."""
        lock = self._locks.get(experiment)
        if lock is not None:
            check_token(self._db, experiment, lock.token)

    # writer lock -------------------------------------------------------------------------------
    def acquire_writer(
        self, experiment: str, holder: str | None = None, ttl_s: float = 60.0
    ) -> WriterLock:
        """Become the experiment's only writer (see :mod:`tuner.writer_lock`)."""
        if ttl_s <= 0:
            raise StoreError(f"writer lock ttl_s must be positive, got {ttl_s}")
        held = self._locks.get(experiment)
        if held is not None:
            try:
                held.heartbeat()
                return held
            except LockLostError:
                pass  # asking again is a new claim; until one succeeds, writes stay fenced
        who = holder or default_holder()
        now = self._now()
        with immediate(self._db):
            token = claim(self._db, experiment, who, ttl_s, now)
        if held is not None:
            held.released = True
        lock = WriterLock(self._db, self._now, experiment, who, token, now, self._forget)
        self._locks[experiment] = lock
        return lock

    def _forget(self, lock: WriterLock) -> None:
        if self._locks.get(lock.experiment) is lock:
            del self._locks[lock.experiment]

    # experiments -----------------------------------------------------------------------------
    def ensure_experiment(self, name: str, spec: str) -> None:
        """Record an experiment (its spec text is updated when it changes)."""
        now = self._now()
        with self._writing(name) as db:
            db.execute(
                "INSERT INTO experiments (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, "
                "updated_at = excluded.updated_at",
                (name, spec, now, now),
            )

    def experiments(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM experiments ORDER BY created_at, name").fetchall()
        return [dict(r) for r in rows]

    def experiment_spec(self, name: str) -> str:
        row = self._db.execute("SELECT spec FROM experiments WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"no experiment named {name!r} in {self.path}")
        return str(row["spec"])

    def set_incumbent(self, name: str, trial_id: int, value: float) -> None:
        with self._writing(name) as db:
            db.execute(
                "UPDATE experiments SET incumbent_trial = ?, incumbent_value = ?, updated_at = ? "
                "WHERE name = ?",
                (trial_id, value, self._now(), name),
            )

    def incumbent(self, name: str) -> tuple[Trial, float] | None:
        """The incumbent trial and its (latest) objective value, if one was promoted."""
        row = self._db.execute(
            "SELECT incumbent_trial, incumbent_value FROM experiments WHERE name = ?", (name,)
        ).fetchone()
        if row is None or row["incumbent_trial"] is None:
            return None
        return self.get(int(row["incumbent_trial"])), float(row["incumbent_value"])

    # snapshots -------------------------------------------------------------------------------
    def save_snapshot(
        self, experiment: str, label: str, applier: str, data: Mapping[str, Any]
    ) -> bool:
        """Keep the first snapshot under a label (later ones are dropped, logged); True if saved."""
        now = self._now()
        text = json.dumps(dict(data), sort_keys=True)
        with self._writing(experiment) as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO snapshots (experiment, label, applier, data, taken_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (experiment, label, applier, text, now),
            )
            saved = cur.rowcount == 1
            if saved and label == "initial":
                db.execute(
                    "UPDATE experiments SET initial_snapshot_at = COALESCE(initial_snapshot_at, ?)"
                    " WHERE name = ?",
                    (now, experiment),
                )
            if not saved:
                kept = db.execute(
                    "SELECT data, taken_at FROM snapshots WHERE experiment = ? AND label = ? "
                    "AND applier = ?",
                    (experiment, label, applier),
                ).fetchone()
        if not saved:
            level = logging.DEBUG if kept["data"] == text else logging.INFO
            log.log(
                level,
                "experiment %r: kept the %s snapshot of %r taken at %s; the state read now %s",
                experiment,
                label,
                applier,
                utc_text(kept["taken_at"]),
                "is the same" if level == logging.DEBUG else "differs and is not stored",
            )
        return saved

    def initial_snapshot_at(self, experiment: str) -> float | None:
        """When the experiment's first initial snapshot was recorded (None: not yet)."""
        row = self._db.execute(
            "SELECT initial_snapshot_at FROM experiments WHERE name = ?", (experiment,)
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def snapshots(self, experiment: str, label: str) -> dict[str, dict[str, Any]]:
        rows = self._db.execute(
            "SELECT applier, data FROM snapshots WHERE experiment = ? AND label = ?",
            (experiment, label),
        ).fetchall()
        taken = self.initial_snapshot_at(experiment) if label == "initial" else None
        if not rows and taken is not None:
            raise StoreDamagedError(
                f"trial store {self.path}: experiment {experiment!r} recorded its initial "
                f"snapshot at {utc_text(taken)} but the store no longer holds it; restore the "
                "store from a backup"
            )
        return {r["applier"]: json.loads(r["data"]) for r in rows}

    # trials ----------------------------------------------------------------------------------
    def propose(
        self,
        experiment: str,
        params: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        kind: str = "trial",
        reason: str | None = None,
    ) -> Trial:
        """Record a new trial in state ``proposed`` with the pre-apply snapshot of its targets."""
        now = self._now()
        with self._writing(experiment) as db:
            row = db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 AS n FROM trials WHERE experiment = ?",
                (experiment,),
            ).fetchone()
            cur = db.execute(
                "INSERT INTO trials (experiment, number, kind, state, params, snapshot, reason, "
                "proposed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    experiment,
                    int(row["n"]),
                    str(kind),
                    str(TrialState.PROPOSED),
                    json.dumps(dict(params), sort_keys=True),
                    json.dumps(dict(snapshot), sort_keys=True),
                    reason,
                    now,
                    now,
                ),
            )
        assert cur.lastrowid is not None
        return self.get(cur.lastrowid)

    def transition(self, trial_id: int, state: str, **fields: Any) -> Trial:
        """Move a trial to ``state`` (checked), setting any of the row's columns in ``fields``."""
        unknown = sorted(set(fields) - _SETTABLE)
        if unknown:
            raise StoreError(f"trial {trial_id}: cannot set {', '.join(unknown)}")
        now = self._now()
        values: dict[str, Any] = {"state": str(state), "updated_at": now}
        if state == TrialState.APPLIED:
            values["applied"] = 1
            values["applied_at"] = now
        if state == TrialState.ROLLED_BACK:
            values["rolled_back"] = 1
        if state in FINAL_STATES:
            values["finished_at"] = now
        for key, val in fields.items():
            if key in ("measurements", "params", "snapshot"):
                val = json.dumps(val, sort_keys=True)
            elif isinstance(val, bool):
                val = int(val)
            values[key] = val
        cols = ", ".join(f"{k} = ?" for k in values)
        with immediate(self._db) as db:
            row = db.execute(
                "SELECT experiment, state FROM trials WHERE id = ?", (trial_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no trial with id {trial_id}")
            current = str(row["state"])
            allowed = next((to for s, to in TRANSITIONS.items() if s == current), frozenset())
            if state not in allowed:
                raise StoreError(f"trial {trial_id}: cannot go from {current} to {state}")
            self._fence(str(row["experiment"]))
            db.execute(f"UPDATE trials SET {cols} WHERE id = ?", (*values.values(), trial_id))
        return self.get(trial_id)

    def get(self, trial_id: int) -> Trial:
        row = self._db.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            raise StoreError(f"no trial with id {trial_id}")
        return self._trial(row)

    def trials(self, experiment: str) -> list[Trial]:
        rows = self._db.execute(
            "SELECT * FROM trials WHERE experiment = ? ORDER BY number", (experiment,)
        ).fetchall()
        return [self._trial(r) for r in rows]

    def in_flight(self, experiment: str) -> list[Trial]:
        return [t for t in self.trials(experiment) if not t.final]

    @staticmethod
    def _trial(row: sqlite3.Row) -> Trial:
        return Trial(
            id=row["id"],
            experiment=row["experiment"],
            number=row["number"],
            kind=row["kind"],
            state=row["state"],
            params=json.loads(row["params"]),
            snapshot=json.loads(row["snapshot"]),
            objective=row["objective"],
            loss=row["loss"],
            measurements=json.loads(row["measurements"]),
            valid=_opt_bool(row["valid"]),
            feasible=_opt_bool(row["feasible"]),
            reason=row["reason"],
            applied=bool(row["applied"]),
            rolled_back=bool(row["rolled_back"]),
            proposed_at=row["proposed_at"],
            applied_at=row["applied_at"],
            finished_at=row["finished_at"],
        )
