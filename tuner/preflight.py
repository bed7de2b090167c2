"""Preflight: before the first change, every signal answers and every applier reads its knobs.

``run_preflight(experiment, appliers, signals)`` asks the backend each signal the experiment will
read (the objective, every constraint, the request rate that makes a measurement valid, and any
capacity signal behind a knob's initial points) once, over the measurement window, and reads
every knob's target through its applier. It changes nothing.

Decisions:
- A signal that cannot be asked (a PromQL syntax error, an unreachable server, several series) is
  a failure carrying the query and the backend's own message. An empty answer is "no data": at
  preflight there may be no traffic yet, so it passes, but it is shown, because a tuning run
  without data measures nothing.
- Each knob is checked on its own (target grammar, the range its system accepts, then ``read``),
  so one unreachable target does not hide the state of the others; cross-knob limits (an HPA's
  min <= max) come from :func:`tuner.appliers.registry.knob_problems`.
- A current value outside the knob's bounds passes but is noted: the tuner starts from it.
- Limits set by the system's current state (``live_bounds_conflicts``: an HPA min knob that may
  rise above a maxReplicas no knob tunes) fail the knob: some of its trials could never apply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuner.appliers.base import Applier, ApplierError, Value
from tuner.appliers.registry import knob_problems
from tuner.signals.base import SignalError, SignalRef, Signals

if TYPE_CHECKING:
    from tuner.spec import Experiment


@dataclass(frozen=True)
class SignalCheck:
    """One signal asked once: its value, no data (None and no error), or the error."""

    label: str
    query: str
    value: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "FAIL"
        return "OK" if self.value is not None else "OK (no data)"

    def to_json(self) -> dict[str, Any]:
        no_data = self.ok and self.value is None
        return {
            "label": self.label,
            "query": self.query,
            "ok": self.ok,
            "value": self.value,
            "no_data": no_data,
            "error": self.error,
        }


@dataclass(frozen=True)
class KnobCheck:
    """One knob's target read through its applier, with any problem found."""

    name: str
    applier: str
    target: str
    value: Value | None = None
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "applier": self.applier,
            "target": self.target,
            "ok": self.ok,
            "value": self.value,
            "errors": list(self.errors),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class PreflightReport:
    """Every signal and knob checked; ``ok`` when none failed."""

    experiment: str
    signals: tuple[SignalCheck, ...] = ()
    knobs: tuple[KnobCheck, ...] = ()
    window_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.signals) and all(k.ok for k in self.knobs)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "ok": self.ok,
            "window_s": self.window_s,
            "signals": [s.to_json() for s in self.signals],
            "knobs": [k.to_json() for k in self.knobs],
        }

    def text(self) -> str:
        """A line per signal and per knob, OK or FAIL, and a verdict."""
        lines = [f"preflight {self.experiment} (signals over {self.window_s:g}s)"]
        for sig in self.signals:
            shown = sig.error if sig.error is not None else _number(sig.value)
            lines.append(f"  {sig.status:<12} signal {sig.label}: {shown}  [{sig.query}]")
        for knob in self.knobs:
            where = f"{knob.applier} {knob.target}"
            if knob.ok:
                lines.append(f"  {'OK':<12} knob {knob.name} ({where}) = {knob.value!r}")
            else:
                lines.append(f"  {'FAIL':<12} knob {knob.name} ({where}): {'; '.join(knob.errors)}")
            lines.extend(f"  {'':<12}   note: {note}" for note in knob.notes)
        lines.append("preflight passed" if self.ok else "preflight FAILED: nothing was changed")
        return "\n".join(lines)


def _number(value: float | None) -> str:
    return "no data (allowed at preflight)" if value is None else f"{value:g}"


def experiment_signals(experiment: Experiment) -> list[tuple[str, SignalRef]]:
    """Every signal a run of ``experiment`` reads, labelled by where it is declared."""
    refs = [("objective", experiment.objective.ref)]
    refs += [(f"constraints[{i}] ({c.name})", c.ref) for i, c in enumerate(experiment.constraints)]
    refs.append(("measurement.rate", experiment.measurement.rate))
    for index, knob in enumerate(experiment.knobs):
        capacity = knob.init.capacity if knob.init is not None else None
        if isinstance(capacity, SignalRef):
            refs.append((f"knobs[{index}].init.capacity ({knob.name})", capacity))
    return refs


def check_signal(label: str, ref: SignalRef, signals: Signals, window_s: float) -> SignalCheck:
    """Ask one signal once."""
    try:
        value = signals.value(ref, window_s)
    except SignalError as err:
        return SignalCheck(label, ref.describe(), error=str(err))
    if value is not None and not math.isfinite(value):
        value = None
    return SignalCheck(label, ref.describe(), value=value)


class PreflightError(Exception):
    """Preflight failed: the run must not change anything. Carries the report."""

    def __init__(self, report: PreflightReport) -> None:
        failed = [f"{s.label} ({s.query}): {s.error}" for s in report.signals if not s.ok]
        failed += [f"knob {k.name}: {', '.join(k.errors)}" for k in report.knobs if not k.ok]
        super().__init__(
            f"preflight of {report.experiment!r} failed, nothing was changed: " + "; ".join(failed)
        )
        self.report = report


def run_preflight(
    experiment: Experiment, appliers: Mapping[str, Applier], signals: Signals
) -> PreflightReport:
    """Ask every signal once and read every knob; change nothing."""
    window_s = experiment.measurement.window_s
    signal_checks = tuple(
        check_signal(label, ref, signals, window_s) for label, ref in experiment_signals(experiment)
    )
    problems = knob_problems(experiment, appliers)
    live = _live_conflicts(experiment, appliers, {p.index for p in problems})
    knob_checks = []
    for index, knob in enumerate(experiment.knobs):
        mine = [problem for problem in problems if problem.index == index]
        errors = [f"{problem.field}: {problem.reason}" for problem in mine]
        notes: list[str] = []
        value: Value | None = None
        applier = appliers.get(knob.applier)
        if applier is not None and not any(p.part == "target" for p in mine):
            try:
                value = applier.read([knob.target])[knob.target]
            except ApplierError as err:
                errors.append(f"read failed: {err}")
            else:
                notes += _outside_bounds(value, knob.low, knob.high)
                if index in live:
                    errors.append(f"knobs[{index}].bounds: {live[index]}")
        knob_checks.append(
            KnobCheck(knob.name, knob.applier, knob.target, value, tuple(errors), tuple(notes))
        )
    return PreflightReport(experiment.name, signal_checks, tuple(knob_checks), window_s)


def _live_conflicts(
    experiment: Experiment, appliers: Mapping[str, Applier], skip: set[int]
) -> dict[int, str]:
    """Knob index -> why its bounds clash with the system's current state."""
    by_applier: dict[str, dict[str, tuple[float, float]]] = {}
    index_of: dict[tuple[str, str], int] = {}
    for index, knob in enumerate(experiment.knobs):
        if index in skip or knob.applier not in appliers or knob.low is None or knob.high is None:
            continue
        by_applier.setdefault(knob.applier, {})[knob.target] = (knob.low, knob.high)
        index_of[(knob.applier, knob.target)] = index
    found: dict[int, str] = {}
    for name, bounds in by_applier.items():
        try:
            conflicts = appliers[name].live_bounds_conflicts(bounds)
        except ApplierError as err:  # the knob reads report the same failure
            conflicts = dict.fromkeys(bounds, f"cannot check against the current state: {err}")
        for target, reason in conflicts.items():
            found[index_of[(name, target)]] = reason
    return found


def _outside_bounds(value: Value, low: float | None, high: float | None) -> list[str]:
    if low is None or high is None or isinstance(value, str) or low <= value <= high:
        return []
    return [f"current value {value!r} lies outside bounds [{low:g}, {high:g}]"]
