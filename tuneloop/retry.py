"""Retry with jittered exponential backoff, on an injected clock: one policy for every client.

``Backoff`` is the policy (``base_s * 2**attempt`` capped at ``cap_s``, with full jitter: the wait
is uniform in ``[0, that]``, as the AWS architecture blog's analysis recommends for many clients
retrying one server). ``retry(fn, ...)`` calls ``fn`` until it returns, retrying only the
exceptions that ``retry_on`` names, at most ``attempts`` calls in all and never past
``deadline_s`` of the clock's time; the last error is re-raised with nothing swallowed. The clock
is a :class:`tuneloop.clock.Clock`, so tests and the simulated fleet never really sleep.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tuneloop.clock import Clock, RealClock

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each retry."""

    base_s: float = 0.2
    cap_s: float = 5.0
    attempts: int = 3  # calls in all, the first included
    deadline_s: float | None = None  # total time budget from the first call
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError(f"need 0 <= base_s <= cap_s, got {self.base_s}, {self.cap_s}")

    def delay_s(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (0 = the first retry), full jitter."""
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))


def retry(
    fn: Callable[[], T],
    *,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff | None = None,
    clock: Clock | None = None,
    what: str = "call",
) -> T:
    """``fn()``, retried on ``retry_on`` by ``backoff``; the last error propagates."""
    policy = backoff or Backoff()
    time_source = clock or RealClock()
    started = time_source.now()
    for attempt in range(policy.attempts):
        try:
            return fn()
        except retry_on as exc:
            if attempt + 1 >= policy.attempts:
                raise
            wait = policy.delay_s(attempt)
            if policy.deadline_s is not None:
                left = policy.deadline_s - (time_source.now() - started)
                if left <= wait:
                    raise
            log.debug("%s failed (%s); retry %d in %.2fs", what, exc, attempt + 1, wait)
            time_source.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")
