"""Retry: bounded attempts, full jitter, the clock's time, only the named errors retried."""

from __future__ import annotations

import random

import pytest

from tuneloop.retry import Backoff, retry


class StepClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def flaky(failures: int, exc: type[Exception] = ConnectionError):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc(f"failure {calls['n']}")
        return "ok"

    return fn, calls


def test_succeeds_after_retries_and_waits_within_the_caps() -> None:
    clock = StepClock()
    fn, calls = flaky(2)
    policy = Backoff(base_s=1.0, cap_s=1.5, attempts=3, rng=random.Random(1))
    assert retry(fn, retry_on=(ConnectionError,), backoff=policy, clock=clock) == "ok"
    assert calls["n"] == 3
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 1.0 and 0 <= clock.sleeps[1] <= 1.5


def test_gives_up_with_the_last_error() -> None:
    fn, calls = flaky(5)
    with pytest.raises(ConnectionError, match="failure 3"):
        retry(fn, retry_on=(ConnectionError,), backoff=Backoff(attempts=3), clock=StepClock())
    assert calls["n"] == 3


def test_other_errors_are_not_retried() -> None:
    fn, calls = flaky(1, ValueError)
    with pytest.raises(ValueError):
        retry(fn, retry_on=(ConnectionError,), clock=StepClock())
    assert calls["n"] == 1


def test_deadline_stops_retrying_early() -> None:
    clock = StepClock()
    fn, calls = flaky(10)
    policy = Backoff(base_s=4.0, cap_s=4.0, attempts=10, deadline_s=5.0, rng=random.Random(0))
    with pytest.raises(ConnectionError):
        retry(fn, retry_on=(ConnectionError,), backoff=policy, clock=clock)
    assert clock.t <= 5.0
    assert calls["n"] < 10


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="attempts"):
        Backoff(attempts=0)
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=2.0, cap_s=1.0)
