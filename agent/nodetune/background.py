"""Node tuning inside ``tuneloop-agent serve``: the watch loop on a daemon thread.

The loop is the same one ``tuneloop-agent nodetune watch`` runs (recover an interrupted apply or
a failed rollback first, then apply the desired file whenever it changes and correct drift every
interval; every apply recovers first too); its report lines go to the agent's log instead of
standard output.
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

from agent.nodetune.cli import watch
from agent.nodetune.reconciler import Reconciler

log = logging.getLogger("tuneloop.nodetune")


class _LogLines(io.TextIOBase):
    """A text stream that logs each complete line."""

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.startswith("error"):
                log.warning("%s", line)
            elif line:
                log.info("%s", line)
        return len(text)


def start_node_tuning(
    procfs: Path, journal: Path, desired: Path, interval_s: float, *, dry_run: bool = False
) -> threading.Thread:
    """Run the reconcile loop in the background; it ends with the process."""
    reconciler = Reconciler(procfs, journal, dry_run)
    thread = threading.Thread(
        target=watch,
        args=(reconciler, desired, interval_s),
        kwargs={"out": _LogLines()},
        name="nodetune",
        daemon=True,
    )
    thread.start()
    return thread
