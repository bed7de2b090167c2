"""Audit log: one JSON object per line, fsync'd, saying what changed, when, why, with what result.

An optional ``event_sink`` receives each record too (in a cluster the controller turns them into
Kubernetes Events); a failing sink is logged as a warning and never stops the tuner. One log may
be shared by threads (the controller's tuning loop and its traffic shifters): records are written
one at a time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]


class AuditLog:
    """Append-only JSON-lines file."""

    def __init__(
        self, path: str | Path, event_sink: EventSink | None = None, clock: Any = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.event_sink = event_sink
        self._now = clock.now if clock is not None else time.time
        self._write = threading.Lock()

    def record(self, action: str, experiment: str, **fields: Any) -> dict[str, Any]:
        """Append one record (``ts``, ``action``, ``experiment`` and ``fields``) and fsync it."""
        entry: dict[str, Any] = {"ts": self._now(), "action": action, "experiment": experiment}
        entry.update(fields)
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        with self._write:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line  # a crash tore the last line: start a fresh one
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        if self.event_sink is not None:
            try:
                self.event_sink(entry)
            except Exception as exc:  # the sink is best effort; the file is the record
                log.warning("audit: event sink failed: %s", exc, extra={"experiment": experiment})
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every record, oldest first (a line torn by a crash is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
