"""Slow a lab process on purpose: SIGSTOP/SIGCONT in a duty cycle, as a throttled GPU would run.

A replica that runs ``run_fraction`` of each ``period_s`` serves at about that fraction of its
speed: every engine step and every socket write waits through the stopped part. ``run_fraction``
0 freezes it outright. The whole process group is signalled, and leaving the context (also on an
exception) always sends SIGCONT, so a test can never leave a replica stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import TracebackType


class Throttle:
    """While inside the context, process group ``pgid`` runs ``run_fraction`` of the time."""

    def __init__(self, pgid: int, run_fraction: float, period_s: float = 0.1) -> None:
        if not 0 <= run_fraction < 1:
            raise ValueError(f"run_fraction must be in [0, 1), got {run_fraction!r}")
        if period_s <= 0:
            raise ValueError(f"period_s must be positive, got {period_s!r}")
        self.pgid = pgid
        self.run_fraction = run_fraction
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._cycle, name="throttle", daemon=True)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)

    def _cycle(self) -> None:
        run_s = self.period_s * self.run_fraction
        stop_s = self.period_s - run_s
        try:
            while not self._stop.is_set():
                self._signal(signal.SIGSTOP)
                if self._stop.wait(stop_s):
                    break
                self._signal(signal.SIGCONT)
                if run_s and self._stop.wait(run_s):
                    break
        finally:
            self._signal(signal.SIGCONT)

    def __enter__(self) -> Throttle:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._signal(signal.SIGCONT)
