"""One measurement of the configuration in place: warm-up, window, repeats, validity, SLO checks.

* Warm-up depends on the most disruptive knob class changed (hot, warm, cold). Constraints are not
  checked during warm-up: transients while pods start or caches fill are expected there.
* Each repeat waits one window. Every ``check_interval`` inside it, each constraint is read over the
  last interval; a breach aborts at once (the loop then rolls back) and the trial is infeasible.
  A check that returns no data or fails is skipped: only the end-of-window reading can invalidate.
* At the end of a window the objective, the constraints and the request rate are read over the
  whole window. No answer (``None``: empty or NaN), a backend error or a request rate below
  ``min_request_rate`` makes the measurement **invalid** (never a number). A bound exceeded
  makes it **infeasible** at once (later repeats are skipped). The objective is the mean over
  repeats, each constraint its worst.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tuneloop.clock import Clock
from tuner.appliers.base import KnobClass
from tuner.signals.base import SignalError, SignalRef, Signals
from tuner.spec import Constraint, Measurement, Objective


@dataclass
class MeasureResult:
    """Outcome of one measurement; ``objective`` is the raw signal value (not negated)."""

    valid: bool
    feasible: bool
    objective: float | None
    constraints: dict[str, float | None] = field(default_factory=dict)
    rate: float | None = None
    reason: str | None = None
    aborted: bool = False  # a breach stopped it early

    @property
    def outcome(self) -> str:
        if not self.valid:
            return "invalid"
        return "done" if self.feasible else "infeasible"

    def as_dict(self) -> dict[str, object]:
        return {
            "objective": self.objective,
            "constraints": self.constraints,
            "rate": self.rate,
            "aborted": self.aborted,
        }


class Measurer:
    """Reads the objective and constraints through a Signals backend on the loop's clock."""

    def __init__(
        self,
        signals: Signals,
        clock: Clock,
        measurement: Measurement,
        objective: Objective,
        constraints: Sequence[Constraint] = (),
    ) -> None:
        self.signals = signals
        self.clock = clock
        self.spec = measurement
        self.objective = objective
        self.constraints = tuple(constraints)

    def warmup_s(self, knob_class: KnobClass | None) -> float:
        return 0.0 if knob_class is None else self.spec.warmup_s.get(knob_class, 0.0)

    def _read(self, ref: SignalRef, window_s: float) -> tuple[float | None, str | None]:
        try:
            return self.signals.value(ref, window_s), None
        except SignalError as exc:
            return None, f"signal {ref.describe()} failed: {exc}"

    def _check(self, window_s: float) -> str | None:
        """The first constraint breached over the last ``window_s``, described, or None."""
        for c in self.constraints:
            value, _err = self._read(c.ref, window_s)
            if value is not None and c.breached(value):
                return f"SLO breach during window: {c.describe(value)}"
        return None

    def measure(self, knob_class: KnobClass | None = None) -> MeasureResult:
        """Warm up, then measure ``repeats`` windows; stop at the first breach."""
        self.clock.sleep(self.warmup_s(knob_class))
        spec = self.spec
        values: list[float] = []
        worst: dict[str, float | None] = {c.name: None for c in self.constraints}
        rate: float | None = None
        for _ in range(spec.repeats):
            elapsed = 0.0
            while elapsed < spec.window_s:
                step = min(spec.check_interval_s, spec.window_s - elapsed)
                self.clock.sleep(step)
                elapsed += step
                if elapsed < spec.window_s and self.constraints:
                    breach = self._check(step)
                    if breach is not None:
                        return MeasureResult(True, False, None, worst, rate, breach, aborted=True)
            rate, err = self._read(spec.rate, spec.window_s)
            if err is not None:
                return MeasureResult(False, False, None, worst, None, err)
            if rate is None or rate < spec.min_request_rate:
                got = "no data" if rate is None else f"{rate:g}/s"
                reason = f"request rate {got} below the minimum {spec.min_request_rate:g}/s"
                return MeasureResult(False, False, None, worst, rate, reason)
            for c in self.constraints:
                value, err = self._read(c.ref, spec.window_s)
                if err is not None or value is None:
                    reason = err or f"constraint {c.name}: no data"
                    return MeasureResult(False, False, None, worst, rate, reason)
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
                return MeasureResult(False, False, None, worst, rate, reason)
            values.append(obj)
        objective = sum(values) / len(values)
        return MeasureResult(True, True, objective, worst, rate)
