"""A durable JSON journal of node tuning: what was there before, what is in flight, what failed.

Every save writes a temporary file in the same directory, fsyncs it, renames it over the journal
and fsyncs the directory, so after a crash the journal is either the old or the new version,
never a torn one. A journal that exists but does not parse is an error naming the file: guessing
would risk "restoring" the wrong values.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
STATES = ("empty", "applying", "applied", "failed", "rolled_back")


class JournalError(Exception):
    """The journal file is unreadable or malformed; the message names the file."""


@dataclass
class Journal:
    """The persisted state of the reconciler."""

    state: str = "empty"
    generation: int | None = None  # generation of the last apply attempt
    desired: dict[str, str] = field(default_factory=dict)  # canonical values of that attempt
    snapshot: dict[str, str] = field(default_factory=dict)  # values before that attempt
    baseline: dict[str, str] = field(default_factory=dict)  # first value ever seen per key
    snapshot_generation: int | None = None  # generation the snapshot's values belonged to
    desired_generation: int | None = None  # newest generation read from the desired file
    applied_generation: int | None = None  # newest generation verified on the node
    last_apply_timestamp: float | None = None
    last_error: str = ""
    failures: dict[str, int] = field(default_factory=dict)  # reason -> count

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
            if not hasattr(journal, name):
                raise JournalError(f"{source}: unknown journal field {name!r}")
            setattr(journal, name, value)
        if journal.state not in STATES:
            raise JournalError(f"{source}: unknown state {journal.state!r}")
        for name in ("desired", "snapshot", "baseline"):
            mapping = getattr(journal, name)
            if not isinstance(mapping, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
            ):
                raise JournalError(f"{source}: {name} must map keys to strings")
        for name in (
            "generation",
            "desired_generation",
            "applied_generation",
            "snapshot_generation",
        ):
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
    """Write ``journal`` durably (temp file, fsync, rename, fsync the directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(journal.to_json(), indent=2, sort_keys=True).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
