"""Traffic shifters inside the controller: each on its own thread, restored when leadership ends.

Decisions:
- One thread per shift config, stepping at that config's ``interval`` on the shifter's clock
  (the controller's clock, without its writer-lock heartbeat, which belongs to the tuning
  thread). Waits are sliced so a stop is seen within :data:`STOP_SLICE_S`.
- A step and a restore hold the shifter's lock, and a step checks the stop flag under it, so no
  step runs after a stop and the restore sees the last weights applied.
- An exception in a step (a balancer that refuses, a bug) is logged and audited as
  ``shift-error``; the thread steps again at the next interval, and the controller never sees
  it. A shifter whose start fails (its balancer unreachable) retries on its next step.
- On stop (the Lease lost, or the process asked to stop) every shifter whose weights differ from
  its baselines puts the baselines back, as ``tuneloop shift --restore`` does, and clears its
  state file, so neither the balancer nor the tuner's pause is left holding a shift nobody
  watches. The old leader gives up at its renew deadline, before the Lease expires for the next
  one, so the restore usually lands before the next leader's shifters start. A failed restore
  is logged and audited (``shift-restore-failed``); the next leader's shifter resumes from the
  state file with the same baselines.
"""

from __future__ import annotations

import logging
import threading

from tuner.shift.runner import Shifter

log = logging.getLogger(__name__)

STOP_SLICE_S = 0.5


class ShiftThread:
    """One shifter's loop on a thread of its own."""

    def __init__(self, shifter: Shifter, stop: threading.Event) -> None:
        self.shifter = shifter
        self.stop = stop
        self.lock = threading.Lock()
        self.thread = threading.Thread(
            target=self.run, name=f"shift-{shifter.config.name}", daemon=True
        )

    @property
    def name(self) -> str:
        return self.shifter.config.name

    def step(self) -> bool:
        """One guarded interval; False once stopped (nothing was done)."""
        with self.lock:
            if self.stop.is_set():
                return False
            try:
                self.shifter.tick()
            except Exception as exc:
                log.exception("shift %s: step failed: %s", self.name, exc)
                self.shifter.audit.record(
                    "shift-error",
                    self.name,
                    balancer=self.shifter.config.balancer,
                    error=f"{type(exc).__name__}: {exc}",
                )
        return True

    def _wait(self, seconds: float) -> None:
        clock = self.shifter.clock
        end = clock.now() + seconds
        while not self.stop.is_set() and (left := end - clock.now()) > 0:
            clock.sleep(min(left, STOP_SLICE_S))

    def run(self) -> None:
        clock = self.shifter.clock
        while not self.stop.is_set():
            began = clock.now()
            if not self.step():
                break
            self._wait(max(0.0, self.shifter.config.interval_s - (clock.now() - began)))

    def shifted(self) -> bool:
        """True when a weight this shifter set differs from its baseline."""
        return any(s.weight != s.baseline for s in self.shifter.states.values())

    def restore(self) -> dict[str, int] | None:
        """Put the baselines back if this shifter changed a weight; the weights restored."""
        with self.lock:
            if not self.shifted():
                return None
            try:
                weights = self.shifter.restore()
            except Exception as exc:
                log.error("shift %s: cannot restore the baselines: %s", self.name, exc)
                baselines = {t: s.baseline for t, s in self.shifter.states.items()}
                self.shifter.audit.record(
                    "shift-restore-failed",
                    self.name,
                    balancer=self.shifter.config.balancer,
                    weights=baselines,
                    error=f"{type(exc).__name__}: {exc}",
                )
                return None
        log.info("shift %s: stopped; baselines restored %s", self.name, weights)
        return weights


class ShiftService:
    """The controller's shifters: started while it leads, stopped and restored when it ends."""

    def __init__(self, shifters: list[Shifter]) -> None:
        self.stop_event = threading.Event()
        self.threads = [ShiftThread(s, self.stop_event) for s in shifters]
        self._started = False
        self._guard = threading.Lock()

    def start(self) -> None:
        """Start every shifter's thread (once; a stopped service starts nothing)."""
        with self._guard:
            if self._started or self.stop_event.is_set():
                return
            self._started = True
            for t in self.threads:
                t.thread.start()
                log.info("shift %s: running every %gs", t.name, t.shifter.config.interval_s)

    def stop(self, join_s: float = 30.0) -> dict[str, dict[str, int]]:
        """Stop every thread, then restore the baselines each changed; the weights restored.

        A step in flight finishes first (the restore waits on its lock); ``join_s`` bounds how
        long a thread may take to leave its loop after that."""
        with self._guard:
            self.stop_event.set()
        restored: dict[str, dict[str, int]] = {}
        for t in self.threads:
            weights = t.restore()
            if weights is not None:
                restored[t.name] = weights
        for t in self.threads:
            if t.thread.is_alive():
                t.thread.join(join_s)
        return restored
