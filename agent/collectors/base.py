"""The collector seam: work happens in ``refresh()``, scrapes read the last snapshot.

A collector is a prometheus_client custom collector. The agent's scheduler calls ``refresh()`` on
the collector's own interval, in a worker thread bounded by a deadline; ``collect()``, called on
every scrape, only yields the families of the last successful refresh, so a scrape never waits
on a slow or hung device call.

Design decision: when a refresh fails or overruns its deadline, the scheduler clears the
snapshot. Serving stale gauges as if current would hide the failure; the collector's
``tuneloop_collector_success`` = 0 tells the story instead.

A collector handles partial failure itself (one GPU lost, one unreadable counter file): it
exports what it could read and counts what it skipped. It raises only when nothing useful
could be read; the message should say what and why, in one line.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric


class CollectorError(Exception):
    """A collection that could read nothing useful; the message is one clear line."""


class Collector(ABC):
    """Base class: subclasses set ``name`` and implement ``scrape()``."""

    name: str = ""

    def __init__(self) -> None:
        self._snapshot: tuple[Metric, ...] = ()
        self._version = 0  # bumped whenever the snapshot changes
        self._lock = threading.Lock()

    @abstractmethod
    def scrape(self) -> Iterable[Metric]:
        """Read the sources now and return complete metric families."""

    def refresh(self) -> None:
        """Scrape and, when that succeeds, replace the snapshot."""
        families = tuple(self.scrape())
        with self._lock:
            self._snapshot = families
            self._version += 1

    def clear(self) -> None:
        """Drop the snapshot (after a failed or overrun refresh)."""
        with self._lock:
            if self._snapshot:
                self._snapshot = ()
                self._version += 1

    def snapshot(self) -> tuple[int, tuple[Metric, ...]]:
        """The snapshot and its version, which changes whenever the snapshot does."""
        with self._lock:
            return self._version, self._snapshot

    def collect(self) -> Iterator[Metric]:
        """Yield the families of the last successful refresh."""
        yield from self.snapshot()[1]

    def describe(self) -> list[Metric]:
        """Nothing up front: registration must not trigger a collection."""
        return []
