"""A collector whose dependencies may not exist yet: built on first use, retried until it is.

The NVIDIA driver can load after the agent starts, or never (a CPU node in a GPU pool). The gpu
collector is therefore built inside ``refresh()``: while building fails, the refresh fails with
the builder's one-line reason (``tuneloop_collector_success`` = 0, logged once by the scheduler)
and every other collector carries on; once it succeeds, the built collector does the work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from prometheus_client.core import Metric

from agent.collectors.base import Collector

C = TypeVar("C", bound=Collector)


class DeferredCollector(Collector, Generic[C]):
    """Builds ``factory()`` on the first refresh that can, then delegates to it."""

    def __init__(self, name: str, factory: Callable[[], C]) -> None:
        super().__init__()
        self.name = name
        self._factory = factory
        self._inner: C | None = None
        self._build_lock = threading.Lock()

    @property
    def inner(self) -> C | None:
        """The built collector, or None while building has not yet succeeded."""
        return self._inner

    def scrape(self) -> Iterable[Metric]:
        return self._built().scrape()

    def refresh(self) -> None:
        self._built().refresh()

    def clear(self) -> None:
        if self._inner is not None:
            self._inner.clear()

    def snapshot(self) -> tuple[int, tuple[Metric, ...]]:
        inner = self._inner
        return inner.snapshot() if inner is not None else (0, ())

    def collect(self) -> Iterator[Metric]:
        yield from self.snapshot()[1]

    def _built(self) -> C:
        with self._build_lock:
            if self._inner is None:
                self._inner = self._factory()  # raises with the reason while unavailable
            return self._inner
