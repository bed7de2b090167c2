"""Runs each collector on its own interval, in the background, bounded by a deadline.

Every collector gets one loop thread. Each tick starts the collector's ``refresh()`` in a worker
thread and waits at most the deadline for it. A refresh that overruns is abandoned, not killed
(Python cannot kill a thread stuck in a device call): the collector is marked failed, its snapshot
cleared, and no new refresh starts until the stuck one returns, so a hung GPU costs one thread,
never one per tick. Scrapes read only snapshots and the state kept here, so they never wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import Metric

from agent.collectors.base import Collector
from agent.hostfs import ReadErrors, read_errors_family
from tuneloop.catalog import collector as self_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """When a collector runs: every ``interval`` seconds, each run bounded by ``deadline``."""

    interval: float
    deadline: float

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.deadline <= 0:
            raise ValueError("interval and deadline must be positive")


@dataclass
class CollectorState:
    """What the scheduler knows of one collector's runs."""

    attempts: int = 0
    success: bool = False
    duration_s: float = 0.0
    last_success_time: float | None = None
    last_error: str = ""
    failures: Counter[str] = field(default_factory=Counter)


class CollectorRunner:
    """Runs one collector on its schedule."""

    def __init__(
        self,
        collector: Collector,
        schedule: Schedule,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.collector = collector
        self.schedule = schedule
        self.state = CollectorState()
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._done = threading.Event()
        self._error: BaseException | None = None

    @property
    def name(self) -> str:
        return self.collector.name

    def run_once(self) -> None:
        """One tick: refresh within the deadline and record the outcome."""
        if self._worker is not None and self._worker.is_alive():
            self._record_failure("stuck", "previous collection still running past its deadline")
            return
        self._done.clear()
        self._error = None
        self._worker = threading.Thread(
            target=self._refresh, name=f"collect-{self.name}", daemon=True
        )
        started = self._monotonic()
        self._worker.start()
        finished = self._done.wait(self.schedule.deadline)
        elapsed = self._monotonic() - started
        if not finished:
            self._record_failure("deadline", f"collection exceeded {self.schedule.deadline:g}s")
            self._set_duration(elapsed)
            return
        self._set_duration(elapsed)
        if self._error is not None:
            self._record_failure("error", str(self._error) or type(self._error).__name__)
            return
        with self._lock:
            if not self.state.success and self.state.attempts:
                log.info("collector %s recovered", self.name)
            self.state.attempts += 1
            self.state.success = True
            self.state.last_success_time = self._wall()
            self.state.last_error = ""

    def _refresh(self) -> None:
        try:
            self.collector.refresh()
        except Exception as exc:  # the collector's failure is data, not a crash
            self._error = exc
        finally:
            self._done.set()

    def _set_duration(self, elapsed: float) -> None:
        with self._lock:
            self.state.duration_s = elapsed

    def _record_failure(self, reason: str, message: str) -> None:
        self.collector.clear()
        with self._lock:
            first = self.state.success or self.state.attempts == 0
            changed = first or message != self.state.last_error
            self.state.attempts += 1
            self.state.success = False
            self.state.last_error = message
            self.state.failures[reason] += 1
        if changed:  # one log line per new failure, not one per tick
            log.warning("collector %s failed (%s): %s", self.name, reason, message)

    def snapshot(self) -> CollectorState:
        """A consistent copy of the state."""
        with self._lock:
            return CollectorState(
                attempts=self.state.attempts,
                success=self.state.success,
                duration_s=self.state.duration_s,
                last_success_time=self.state.last_success_time,
                last_error=self.state.last_error,
                failures=Counter(self.state.failures),
            )


class Scheduler:
    """Owns the runners, their loop threads, readiness and the self-metrics."""

    def __init__(self, runners: Sequence[CollectorRunner]) -> None:
        names = [r.name for r in runners]
        if len(set(names)) != len(names):
            raise ValueError(f"collector names must be unique, got {names}")
        self.runners = list(runners)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start one loop thread per collector; each runs a first collection at once."""
        for runner in self.runners:
            thread = threading.Thread(
                target=self._loop, args=(runner,), name=f"schedule-{runner.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the loops, waiting at most ``timeout`` in all (not per loop).

        A collection in flight is left to finish on its own: loop and worker threads are
        daemons, so none of them can hold the process at exit.
        """
        self._stop.set()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(end - time.monotonic(), 0.0))

    def _loop(self, runner: CollectorRunner) -> None:
        interval = runner.schedule.interval
        next_run = time.monotonic()
        while not self._stop.is_set():
            runner.run_once()
            next_run += interval
            now = time.monotonic()
            if next_run < now:  # fell behind (a long deadline): skip missed ticks
                next_run = now + interval - (now - next_run) % interval
            self._stop.wait(next_run - now)

    def ready(self) -> bool:
        """True once every collector has finished a first attempt (success or not)."""
        return all(r.snapshot().attempts > 0 for r in self.runners)

    def collect(self) -> Iterator[Metric]:
        """Self-metrics for every collector (a prometheus_client custom collector)."""
        success = self_metrics.COLLECTOR_SUCCESS.family()
        duration = self_metrics.COLLECTOR_DURATION.family()
        last = self_metrics.COLLECTOR_LAST_SUCCESS.family()
        failures = self_metrics.COLLECTOR_FAILURES.family()
        for runner in self.runners:
            state = runner.snapshot()
            if state.attempts == 0:
                continue
            success.add_metric([runner.name], 1.0 if state.success else 0.0)
            duration.add_metric([runner.name], state.duration_s)
            if state.last_success_time is not None:
                last.add_metric([runner.name], state.last_success_time)
            for reason in ("error", "deadline", "stuck"):
                failures.add_metric([runner.name, reason], float(state.failures[reason]))
        yield from (success, duration, last, failures)
        sources = [getattr(r.collector, "read_errors", None) for r in self.runners]
        found = [source for source in sources if isinstance(source, ReadErrors)]
        if found:
            yield read_errors_family(found)

    def describe(self) -> list[Metric]:
        return []
