"""A durable JSON journal of node tuning: what was there before, what is in flight, what failed.

The state file is replaced with ``tuneloop.durable.atomic_write`` (temp file, fsync, rename, fsync
the directory), so after a crash it is either the old or the new version, never a torn one. A
journal that exists but does not parse is an error naming the file: guessing would risk
"restoring" the wrong values.

Beside it, ``<journal>.history.jsonl`` is an append-only record of every change (one JSON object
per line, appended and fsynced with ``durable.append_line`` before the sysctl write it announces),
read back with ``durable.read_lines``, which drops a line torn by a crash.

States: ``empty`` -> ``applying`` -> ``applied`` | ``rolling_back``; ``rolling_back`` ->
``failed`` (an apply undone), ``rolled_back`` (an operator rollback done) or ``rollback_failed``
(``restore`` lists the keys not yet restored; the next entry retries them). ``applying`` and
``rolling_back`` found on entry mean the process died midway: crash recovery resolves them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.durable import append_line, atomic_write, read_lines

VERSION = 1
STATES = (
    "empty",
    "applying",
    "applied",
    "failed",
    "rolling_back",
    "rolled_back",
    "rollback_failed",
)
UNRECOVERED = ("applying", "rolling_back", "rollback_failed")
RESTORE_KINDS = ("", "apply", "rollback", "baseline")
_MAPPINGS = ("desired", "snapshot", "baseline", "found", "restore")
_GENERATIONS = ("generation", "desired_generation", "applied_generation", "snapshot_generation")


class JournalError(Exception):
    """The journal file is unreadable or malformed; the message names the file."""


@dataclass
class Journal:
    """The persisted state of the reconciler."""

    state: str = "empty"
    generation: int | None = None  # generation of the last apply attempt
    desired: dict[str, str] = field(default_factory=dict)  # canonical values of that attempt
    snapshot: dict[str, str] = field(default_factory=dict)  # what a rollback returns to
    baseline: dict[str, str] = field(default_factory=dict)  # first value ever seen per key
    found: dict[str, str] = field(default_factory=dict)  # what the last attempt found
    restore: dict[str, str] = field(default_factory=dict)  # keys a rollback has yet to restore
    restore_kind: str = ""  # what the pending restore undoes: apply, rollback or baseline
    snapshot_generation: int | None = None  # generation the snapshot's values belonged to
    desired_generation: int | None = None  # newest generation read from the desired file
    applied_generation: int | None = None  # newest generation verified on the node
    last_apply_timestamp: float | None = None
    last_error: str = ""
    failures: dict[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def unrecovered(self) -> bool:
        """True while the node may hold values the journal has not settled."""
        return self.state in UNRECOVERED

    def count_failure(self, reason: str, message: str) -> None:
        """Record one failure."""
        self.failures[reason] = self.failures.get(reason, 0) + 1
        self.last_error = message

    def to_json(self) -> dict[str, Any]:
        """The JSON document."""
        return {"version": VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any, source: str) -> Journal:
        """Parse a document, naming ``source`` in any error."""
        if not isinstance(data, dict):
            raise JournalError(f"{source}: journal must be a JSON object")
        if data.get("version") != VERSION:
            raise JournalError(f"{source}: unsupported journal version {data.get('version')!r}")
        journal = cls()
        for name, value in data.items():
            if name == "version":
                continue
            if name.startswith("_") or name not in journal.__dataclass_fields__:
                raise JournalError(f"{source}: unknown journal field {name!r}")
            setattr(journal, name, value)
        if journal.state not in STATES:
            raise JournalError(f"{source}: unknown state {journal.state!r}")
        if journal.restore_kind not in RESTORE_KINDS:
            raise JournalError(f"{source}: unknown restore_kind {journal.restore_kind!r}")
        for name in _MAPPINGS:
            mapping = getattr(journal, name)
            if not isinstance(mapping, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
            ):
                raise JournalError(f"{source}: {name} must map keys to strings")
        for name in _GENERATIONS:
            value = getattr(journal, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise JournalError(f"{source}: {name} must be an integer or null")
        if not isinstance(journal.failures, dict) or not all(
            isinstance(v, int) for v in journal.failures.values()
        ):
            raise JournalError(f"{source}: failures must map reasons to counts")
        return journal


def load(path: Path) -> Journal:
    """The journal at ``path``; an empty journal when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Journal()
    except OSError as exc:
        raise JournalError(f"{path}: cannot read journal: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JournalError(f"{path}: journal is not valid JSON: {exc}") from exc
    return Journal.from_json(data, str(path))


def save(path: Path, journal: Journal) -> None:
    """Write ``journal`` durably; it is on disk when this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(journal.to_json(), indent=2, sort_keys=True)
    atomic_write(path, payload, mode=0o600)


def history_path(path: Path) -> Path:
    """The append-only history beside the journal at ``path``."""
    return path.with_name(path.name + ".history.jsonl")


def record(path: Path, event: dict[str, Any]) -> None:
    """Append one event to the history of the journal at ``path`` (fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    append_line(history_path(path), json.dumps(event, sort_keys=True))


def history(path: Path) -> list[dict[str, Any]]:
    """The events recorded for the journal at ``path``, oldest first."""
    events: list[dict[str, Any]] = []
    target = history_path(path)
    try:
        lines = read_lines(target)
    except (OSError, ValueError) as exc:
        raise JournalError(f"{target}: cannot read history: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise JournalError(f"{target}:{number}: not a JSON record: {exc}") from exc
    return events


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<journal>.lock``: one writer of the journal at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
