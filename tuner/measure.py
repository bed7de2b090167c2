"""One measurement of the configuration in place: warm-up, window, repeats, validity, SLO checks.

* Warm-up depends on the most disruptive knob class changed (hot, warm, cold). Constraints are not
  checked during warm-up: transients while pods start or caches fill are expected there.
* Each repeat waits one window. Every ``check_interval`` inside it, each constraint is read over the
  last interval; a breach aborts at once (the loop then rolls back) and the trial is infeasible.
  A constraint that cannot be read inside the window (backend error, no data) is handled like a
  breach for safety: the window aborts at once and the loop rolls back. It is recorded as an
  invalid measurement with ``signal_failure`` set, not as infeasible, so the strategy does not
  learn a false infeasible region from a Prometheus outage.
* At the end of a window the objective, the constraints and the request rate are read over the
  whole window. No answer (``None``: empty or NaN) or a backend error makes the measurement
  **invalid** with ``signal_failure`` set (the loop counts consecutive ones and stops); a request
  rate below ``min_request_rate`` makes it invalid too (too little traffic, not a failing
  signal). A bound exceeded makes it **infeasible** at once (later repeats are skipped). The
  objective is the mean over repeats, each constraint its worst.
* ``on_tick`` (optional) receives a :class:`~tuner.progress.MeasureTick` after every sleep, for
  live progress on a terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tuneloop.clock import Clock
from tuner.appliers.base import KnobClass
from tuner.progress import MeasureTick
from tuner.signals.base import SignalError, SignalRef, Signals
from tuner.spec import Constraint, Measurement, Objective
from tuner.trial_state import TrialState

log = logging.getLogger(__name__)

TickCallback = Callable[[MeasureTick], None]


@dataclass
class MeasureResult:
    """Outcome of one measurement; ``objective`` is the raw signal value (not negated)."""

    valid: bool
    feasible: bool
    objective: float | None
    constraints: dict[str, float | None] = field(default_factory=dict)
    rate: float | None = None
    reason: str | None = None
    aborted: bool = False  # stopped before the end of the window
    signal_failure: bool = False  # a signal failed or had no data (not a property of the config)

    @property
    def outcome(self) -> TrialState:
        if not self.valid:
            return TrialState.INVALID
        return TrialState.DONE if self.feasible else TrialState.INFEASIBLE

    def as_dict(self) -> dict[str, object]:
        return {
            "objective": self.objective,
            "constraints": self.constraints,
            "rate": self.rate,
            "aborted": self.aborted,
            "signal_failure": self.signal_failure,
        }


def _unmeasured(
    worst: dict[str, float | None], rate: float | None, reason: str, aborted: bool = False
) -> MeasureResult:
    return MeasureResult(False, False, None, worst, rate, reason, aborted, signal_failure=True)


class Measurer:
    """Reads the objective and constraints through a Signals backend on the loop's clock."""

    def __init__(
        self,
        signals: Signals,
        clock: Clock,
        measurement: Measurement,
        objective: Objective,
        constraints: Sequence[Constraint] = (),
        on_tick: TickCallback | None = None,
    ) -> None:
        self.signals = signals
        self.clock = clock
        self.spec = measurement
        self.objective = objective
        self.constraints = tuple(constraints)
        self.on_tick = on_tick

    def warmup_s(self, knob_class: KnobClass | None) -> float:
        return 0.0 if knob_class is None else self.spec.warmup_s.get(knob_class, 0.0)

    def _read(self, ref: SignalRef, window_s: float) -> tuple[float | None, str | None]:
        try:
            value = self.signals.value(ref, window_s)
        except SignalError as exc:
            log.debug("signal %s over %gs failed: %s", ref.describe(), window_s, exc)
            return None, f"signal {ref.describe()} failed: {exc}"
        log.debug("signal %s over %gs = %s", ref.describe(), window_s, value)
        return value, None

    def _tick(self, tick: MeasureTick) -> None:
        if self.on_tick is not None:
            self.on_tick(tick)

    def _warm_up(self, seconds: float) -> None:
        left = seconds
        step = max(self.spec.check_interval_s, 1e-9)
        while left > 0:
            part = min(step, left)
            self.clock.sleep(part)
            left -= part
            self._tick(MeasureTick("warm-up", left))

    def _check(
        self, window_s: float, readings: dict[str, float | None], worst: dict[str, float | None]
    ) -> MeasureResult | None:
        """Read every constraint over the last ``window_s``: a breach or an unreadable one ends
        the window (an abort result); None when all are readable and within bounds."""
        for c in self.constraints:
            value, err = self._read(c.ref, window_s)
            readings[c.name] = value
            if err is not None or value is None:
                why = err or "no data"
                reason = f"SLO {c.name} unreadable during window ({why}): rolled back as a breach"
                return _unmeasured(worst, None, reason, aborted=True)
            if c.breached(value):
                worst[c.name] = value
                reason = f"SLO breach during window: {c.describe(value)}"
                return MeasureResult(True, False, None, worst, None, reason, aborted=True)
        return None

    def measure(self, knob_class: KnobClass | None = None) -> MeasureResult:
        """Warm up, then measure ``repeats`` windows; stop at the first breach or failure."""
        self._warm_up(self.warmup_s(knob_class))
        spec = self.spec
        values: list[float] = []
        worst: dict[str, float | None] = {c.name: None for c in self.constraints}
        rate: float | None = None
        readings: dict[str, float | None] = {}
        for repeat in range(1, spec.repeats + 1):
            elapsed = 0.0
            while elapsed < spec.window_s:
                step = min(spec.check_interval_s, spec.window_s - elapsed)
                self.clock.sleep(step)
                elapsed += step
                if elapsed < spec.window_s and self.constraints:
                    stop = self._check(step, readings, worst)
                    if stop is not None:
                        return stop
                left = spec.window_s - elapsed
                self._tick(MeasureTick("window", left, repeat, spec.repeats, dict(readings)))
            rate, err = self._read(spec.rate, spec.window_s)
            if err is not None or rate is None:
                return _unmeasured(worst, None, err or "request rate no data")
            if rate < spec.min_request_rate:
                reason = f"request rate {rate:g}/s below the minimum {spec.min_request_rate:g}/s"
                return MeasureResult(False, False, None, worst, rate, reason)
            for c in self.constraints:
                value, err = self._read(c.ref, spec.window_s)
                if err is not None or value is None:
                    return _unmeasured(worst, rate, err or f"constraint {c.name}: no data")
                if c.breached(value):
                    worst[c.name] = value
                    return MeasureResult(True, False, None, worst, rate, c.describe(value))
                prev = worst[c.name]
                if (
                    prev is None
                    or (c.max is not None and value > prev)
                    or (c.min is not None and value < prev)
                ):
                    worst[c.name] = value
            obj, err = self._read(self.objective.ref, spec.window_s)
            if err is not None or obj is None:
                reason = err or f"objective {self.objective.ref.describe()}: no data"
                return _unmeasured(worst, rate, reason)
            values.append(obj)
        objective = sum(values) / len(values)
        return MeasureResult(True, True, objective, worst, rate)
