"""Durable trial store (SQLite, WAL, ``synchronous=FULL``): every step is on disk before the next.

Tables: ``experiments`` (spec text, incumbent), ``snapshots`` (the state of every touched object
before the first change, per applier, for ``tuneloop rollback --to initial``) and ``trials``, one
row per trial moving through a checked state machine::

    proposed -> applying -> applied -> measuring -> done | invalid | infeasible
        \\-> advised      \\-> rolled_back (from any non-final state)

A trial row holds its params, the pre-apply snapshot of its targets, measurements, validity,
whether it was applied and rolled back, and the times of each step. ``kind`` is ``trial`` (a
strategy proposal), ``incumbent`` (a re-measurement of the best before a new best is promoted),
``baseline`` (advisory mode: the current configuration measured without changing it) or
``final`` (applying the best at the end).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FINAL = ("done", "invalid", "infeasible", "rolled_back", "advised")
IN_FLIGHT = ("proposed", "applying", "applied", "measuring")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("applying", "rolled_back", "advised", "measuring"),
    "applying": ("applied", "rolled_back"),
    "applied": ("measuring", "done", "rolled_back"),
    "measuring": ("done", "invalid", "infeasible", "rolled_back"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    incumbent_trial INTEGER, incumbent_value REAL);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, label TEXT NOT NULL, applier TEXT NOT NULL,
    data TEXT NOT NULL, taken_at REAL NOT NULL, UNIQUE (experiment, label, applier));
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, number INTEGER NOT NULL, kind TEXT NOT NULL,
    state TEXT NOT NULL, params TEXT NOT NULL, snapshot TEXT NOT NULL, objective REAL, loss REAL,
    measurements TEXT NOT NULL DEFAULT '{}', valid INTEGER, feasible INTEGER, reason TEXT,
    applied INTEGER NOT NULL DEFAULT 0, rolled_back INTEGER NOT NULL DEFAULT 0,
    proposed_at REAL NOT NULL, applied_at REAL, finished_at REAL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS trials_by_experiment ON trials (experiment, number);
"""


class StoreError(Exception):
    """The store refused an operation (an illegal state change, an unknown trial)."""


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

    def __init__(self, path: str | Path, clock: Any = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._now = clock.now if clock is not None else time.time
        self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(sql, args)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return cur

    # experiments -----------------------------------------------------------------------------
    def ensure_experiment(self, name: str, spec: str) -> None:
        """Record an experiment (its spec text is updated when it changes)."""
        now = self._now()
        self._write(
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
        self._write(
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
        """Keep the first snapshot under a label (later ones are dropped); True if saved."""
        cur = self._write(
            "INSERT OR IGNORE INTO snapshots (experiment, label, applier, data, taken_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (experiment, label, applier, json.dumps(dict(data), sort_keys=True), self._now()),
        )
        return cur.rowcount == 1

    def snapshots(self, experiment: str, label: str) -> dict[str, dict[str, Any]]:
        rows = self._db.execute(
            "SELECT applier, data FROM snapshots WHERE experiment = ? AND label = ?",
            (experiment, label),
        ).fetchall()
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
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 AS n FROM trials WHERE experiment = ?",
                (experiment,),
            ).fetchone()
            cur = self._db.execute(
                "INSERT INTO trials (experiment, number, kind, state, params, snapshot, reason, "
                "proposed_at, updated_at) VALUES (?, ?, ?, 'proposed', ?, ?, ?, ?, ?)",
                (
                    experiment,
                    int(row["n"]),
                    kind,
                    json.dumps(dict(params), sort_keys=True),
                    json.dumps(dict(snapshot), sort_keys=True),
                    reason,
                    now,
                    now,
                ),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        assert cur.lastrowid is not None
        return self.get(cur.lastrowid)

    def transition(self, trial_id: int, state: str, **fields: Any) -> Trial:
        """Move a trial to ``state`` (checked), setting any of the row's columns in ``fields``."""
        current = self.get(trial_id)
        if state not in TRANSITIONS.get(current.state, ()):
            raise StoreError(f"trial {trial_id}: cannot go from {current.state} to {state}")
        now = self._now()
        values: dict[str, Any] = {"state": state, "updated_at": now}
        if state == "applied":
            values["applied"] = 1
            values["applied_at"] = now
        if state == "rolled_back":
            values["rolled_back"] = 1
        if state in FINAL:
            values["finished_at"] = now
        for key, val in fields.items():
            if key in ("measurements", "params"):
                val = json.dumps(val, sort_keys=True)
            elif isinstance(val, bool):
                val = int(val)
            values[key] = val
        cols = ", ".join(f"{k} = ?" for k in values)
        self._write(f"UPDATE trials SET {cols} WHERE id = ?", (*values.values(), trial_id))
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
