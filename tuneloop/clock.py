"""Time as the tuner sees it: real wall time, or a simulation's clock.

The loop only ever calls ``now()`` and ``sleep()``, so the same loop drives a real cluster (where
sleeping waits) and the simulated fleet (where sleeping advances the model).
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What the loop needs of time."""

    def now(self) -> float:
        """Seconds since the epoch (real or simulated)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        ...


class RealClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
