import threading
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from agent.collectors.base import Collector
from agent.hostfs import ReadErrors
from agent.scheduler import CollectorRunner, Schedule, Scheduler
from tests.unit.collector_doubles import Failing, Steady


class Hanging(Collector):
    name = "hanging"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def scrape(self):
        self.release.wait(10)
        return [GaugeMetricFamily("tuneloop_test_late", "test", value=1.0)]


def exposition(*collectors) -> str:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry).decode()


def test_collect_serves_the_last_snapshot_without_working():
    steady = Steady()
    runner = CollectorRunner(steady, Schedule(5, 1))
    runner.run_once()
    assert 'tuneloop_test_value{k="a"} 1.0' in exposition(steady)
    assert 'tuneloop_test_value{k="a"} 1.0' in exposition(steady)
    assert steady.calls == 1


def test_failure_clears_snapshot_and_reports_success_zero():
    failing = Failing()
    failing.fail = False
    runner = CollectorRunner(failing, Schedule(5, 1))
    runner.run_once()
    assert "tuneloop_test_ok 1.0" in exposition(failing)
    failing.fail = True
    runner.run_once()
    assert "tuneloop_test_ok" not in exposition(failing)
    scheduler = Scheduler([runner])
    text = exposition(scheduler)
    assert 'tuneloop_collector_success{collector="failing"} 0.0' in text
    assert 'tuneloop_collector_failures_total{collector="failing",reason="error"} 1.0' in text
    assert runner.snapshot().last_error == "no such device"


def test_hung_collection_is_bounded_by_the_deadline_and_not_restarted():
    hanging = Hanging()
    runner = CollectorRunner(hanging, Schedule(5, 0.05))
    runner.run_once()
    state = runner.snapshot()
    assert not state.success and state.failures["deadline"] == 1
    runner.run_once()  # still stuck: no second worker thread, counted as stuck
    assert runner.snapshot().failures["stuck"] == 1
    assert sum(t.name == "collect-hanging" for t in threading.enumerate()) == 1
    hanging.release.set()
    assert runner._worker is not None
    runner._worker.join(2)
    runner.run_once()
    assert runner.snapshot().success


def test_one_failing_collector_leaves_the_others_exported():
    steady, failing = Steady(), Failing()
    runners = [CollectorRunner(steady, Schedule(5, 1)), CollectorRunner(failing, Schedule(5, 1))]
    scheduler = Scheduler(runners)
    assert not scheduler.ready()
    for runner in runners:
        runner.run_once()
    assert scheduler.ready()
    text = exposition(steady, failing, scheduler)
    assert 'tuneloop_test_value{k="a"} 1.0' in text
    assert 'tuneloop_collector_success{collector="steady"} 1.0' in text
    assert 'tuneloop_collector_success{collector="failing"} 0.0' in text
    assert 'tuneloop_collector_last_success_timestamp_seconds{collector="steady"}' in text


def test_scheduler_runs_collectors_in_the_background():
    steady = Steady()
    scheduler = Scheduler([CollectorRunner(steady, Schedule(0.02, 0.01))])
    scheduler.start()
    try:
        for _ in range(200):
            if steady.calls >= 3:
                break
            threading.Event().wait(0.01)
    finally:
        scheduler.stop()
    assert steady.calls >= 3


def test_names_must_be_unique_and_schedules_positive():
    with pytest.raises(ValueError, match="unique"):
        Scheduler(
            [CollectorRunner(Steady(), Schedule(1, 1)), CollectorRunner(Steady(), Schedule(1, 1))]
        )
    with pytest.raises(ValueError):
        Schedule(0, 1)


class Reading(Collector):
    """A collector that reads host files and counts what it skipped."""

    def __init__(self, name: str, skipped: int) -> None:
        super().__init__()
        self.name = name
        self.read_errors = ReadErrors(name)
        for _ in range(skipped):
            self.read_errors.count("not_regular", f"/sys/{name}", "refusing to read a FIFO")

    def scrape(self):
        return []


def test_read_errors_of_every_collector_render_as_one_family():
    runners = [
        CollectorRunner(Reading("net", 2), Schedule(1, 1)),
        CollectorRunner(Reading("numa", 0), Schedule(1, 1)),
        CollectorRunner(Steady(), Schedule(1, 1)),
    ]
    for runner in runners:
        runner.run_once()
    registry = CollectorRegistry()
    registry.register(Scheduler(runners))
    text = generate_latest(registry).decode()
    assert text.count("# HELP tuneloop_collector_read_errors_total") == 1
    assert 'tuneloop_collector_read_errors_total{collector="net",reason="not_regular"} 2.0' in text
    assert 'tuneloop_collector_read_errors_total{collector="numa",reason="not_regular"} 0.0' in text
    assert 'read_errors_total{collector="steady"' not in text


def test_stop_waits_a_total_not_a_timeout_per_loop():
    release = threading.Event()

    class Stuck(Collector):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def scrape(self):
            release.wait(30)
            return []

    scheduler = Scheduler([CollectorRunner(Stuck(f"stuck{i}"), Schedule(60, 30)) for i in range(5)])
    scheduler.start()
    try:
        start = time.monotonic()
        scheduler.stop(timeout=0.2)
        assert time.monotonic() - start < 5 * 0.2  # five stuck loops, one shared budget
    finally:
        release.set()
