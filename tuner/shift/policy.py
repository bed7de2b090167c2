"""The traffic-shift policy: pure decisions from per-replica latency readings to weights.

Each interval the shifter hands :func:`step` the latest P99 of every replica (``None`` when there
is no valid reading). The policy, with no I/O and no clock of its own:

* smooths each replica's P99 with an exponential moving average (``ema_alpha``), so one noisy
  window does not move traffic; a missing reading leaves the average (and the weight) as it was,
  never read as zero latency;
* calls a replica *degraded* when its smoothed P99 is over ``threshold_s`` (absolute) or over
  ``relative`` times the fleet's median smoothed P99 (relative; both may be set, either trips);
* lowers a degraded replica's weight by ``step_ratio`` of its baseline per interval, never below
  ``min_weight``, and keeps stepping while it stays over;
* restores in the same steps once the replica has stayed under the *clear* threshold
  (``clear_ratio`` of the trip threshold: hysteresis) for ``hold_s``, up to its baseline weight,
  and steps a shifted replica back at once when every replica that took its load is degraded
  too (a fleet-wide slowdown seen one replica at a time: the shift helps nobody);
* guards capacity: at most ``max_drained`` replicas shifted at once (the worst first), and no
  step while any replica that would take the load is over ``headroom_ratio`` of the trip
  threshold: their own P99 is the evidence of headroom (1.0, the default, means "not degraded
  itself"; lower it to keep a margin). A fleet-wide slowdown therefore shifts nothing: with a
  relative threshold nobody stands out; with an absolute one nobody has headroom.

Baselines are the tuner's weights: the shifter works around them and returns to them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from tuneloop.schema import setting
from tuneloop.validation import fail, join


class ShiftAction(StrEnum):
    """What the policy did to one replica in one interval."""

    SHIFT = "shift"  # weight lowered
    RESTORE = "restore"  # weight raised back toward baseline
    BLOCKED = "blocked"  # degraded, but a capacity guard kept its weight


@dataclass(frozen=True)
class ShiftSettings:
    """The policy's parameters: the ``policy:`` section of a shifter's file."""

    ema_alpha: float = setting(
        0.5, positive=True, maximum=1, help="Weight of the newest reading in the moving average."
    )
    relative: float | None = setting(
        None, minimum=1, help="Degraded above this multiple of the fleet's median smoothed P99."
    )
    threshold_s: float | None = setting(
        0.2, key="threshold", kind="duration",
        derive=lambda scope: None if scope.values.get("relative") is not None else 0.2,
        default_text="200ms, or none when relative is set",
        help="Degraded above this smoothed P99 (with relative too: the lower of the two).",
    )  # fmt: skip
    clear_ratio: float = setting(
        0.8, positive=True, maximum=1,
        help="Restore once under this fraction of the trip threshold (hysteresis).",
    )  # fmt: skip
    hold_s: float = setting(
        30.0, key="hold", kind="duration", positive=False,
        help="How long a replica stays under the clear line before its weight is restored.",
    )  # fmt: skip
    step_ratio: float = setting(
        0.25, positive=True, maximum=1, help="Weight step per interval, a fraction of baseline."
    )
    min_weight: int = setting(1, minimum=0, help="Never below this weight (0 drains fully).")
    max_drained: int = setting(1, minimum=1, help="At most this many replicas shifted at once.")
    headroom_ratio: float = setting(
        1.0, positive=True, maximum=1,
        help="No step while a replica that would take the load is over this fraction of the "
        "trip threshold (1.0: not degraded itself).",
    )  # fmt: skip

    def __post_init__(self) -> None:
        self.check_config("policy")

    def check_config(self, field: str) -> None:
        if self.threshold_s is None and self.relative is None:
            fail(field, "set threshold_s, relative, or both")
        checks = (
            ("ema_alpha", 0 < self.ema_alpha <= 1, "must be in (0, 1]"),
            ("clear_ratio", 0 < self.clear_ratio < 1, "must be in (0, 1)"),
            ("step_ratio", 0 < self.step_ratio <= 1, "must be in (0, 1]"),
            ("headroom_ratio", 0 < self.headroom_ratio <= 1, "must be in (0, 1]"),
            ("relative", self.relative is None or self.relative > 1, "must be above 1"),
            ("min_weight", self.min_weight >= 0, "must be at least 0"),
            ("max_drained", self.max_drained >= 1, "must be at least 1"),
            ("hold", self.hold_s >= 0, "must not be negative"),
        )
        for name, ok, why in checks:
            if not ok:
                fail(join(field, name), f"{why}, got {getattr(self, name, self.hold_s)}")


@dataclass(frozen=True)
class ReplicaState:
    """One replica's memory between intervals."""

    baseline: int
    weight: int
    smoothed: float | None = None
    clear_since: float | None = None  # when its smoothed P99 last went under the clear line
    last_direction: int = 0  # -1 after a shift, +1 after a restore
    reversals: int = 0

    @property
    def shifted(self) -> bool:
        return self.weight < self.baseline


@dataclass(frozen=True)
class ShiftEvent:
    """A change (or a blocked change) with the readings behind it, for the audit trail."""

    replica: str
    action: ShiftAction
    from_weight: int
    to_weight: int
    reading: float | None
    smoothed: float | None
    trip_s: float | None
    reason: str


@dataclass(frozen=True)
class ShiftResult:
    states: dict[str, ReplicaState]
    events: list[ShiftEvent] = field(default_factory=list)

    @property
    def weights(self) -> dict[str, int]:
        return {name: state.weight for name, state in self.states.items()}

    @property
    def active(self) -> bool:
        """Whether any replica is off its baseline (the tuner must not start a trial)."""
        return any(state.shifted for state in self.states.values())


def initial_states(baselines: Mapping[str, int]) -> dict[str, ReplicaState]:
    """Every replica at its baseline (the tuner's weight), nothing smoothed yet."""
    return {name: ReplicaState(baseline=w, weight=w) for name, w in baselines.items()}


def _smooth(previous: float | None, reading: float | None, alpha: float) -> float | None:
    if reading is None:
        return previous
    return reading if previous is None else alpha * reading + (1 - alpha) * previous


def trip_threshold(settings: ShiftSettings, smoothed: Mapping[str, float | None]) -> float | None:
    """The P99 above which a replica counts as degraded this interval (None: not enough data)."""
    limits = []
    if settings.threshold_s is not None:
        limits.append(settings.threshold_s)
    known = [v for v in smoothed.values() if v is not None]
    if settings.relative is not None and len(known) >= 2:
        limits.append(settings.relative * statistics.median(known))
    return min(limits) if limits else None


def _moved(state: ReplicaState, weight: int, direction: int) -> ReplicaState:
    reversal = state.last_direction != 0 and direction != state.last_direction
    return replace(
        state,
        weight=weight,
        last_direction=direction,
        reversals=state.reversals + (1 if reversal else 0),
    )


def step(
    states: Mapping[str, ReplicaState],
    readings: Mapping[str, float | None],
    settings: ShiftSettings,
    now: float,
) -> ShiftResult:
    """One interval of the policy: new states and the events that explain them."""
    smoothed = {
        name: _smooth(state.smoothed, readings.get(name), settings.ema_alpha)
        for name, state in states.items()
    }
    trip = trip_threshold(settings, smoothed)
    clear = None if trip is None else trip * settings.clear_ratio
    new: dict[str, ReplicaState] = {}
    for name, state in states.items():
        value = smoothed[name]
        under = value is not None and clear is not None and value < clear
        since = (state.clear_since if state.clear_since is not None else now) if under else None
        new[name] = replace(state, smoothed=value, clear_since=since)

    events: list[ShiftEvent] = []

    def event(name: str, action: ShiftAction, to: int, reason: str) -> None:
        s = new[name]
        events.append(
            ShiftEvent(name, action, s.weight, to, readings.get(name), s.smoothed, trip, reason)
        )

    degraded = sorted(
        (
            n
            for n, s in new.items()
            if trip is not None and s.smoothed is not None and s.smoothed > trip
        ),
        key=lambda n: -(new[n].smoothed or 0.0),
    )
    for name in degraded:
        state = new[name]
        lowest = max(settings.min_weight, 0)
        if state.weight <= lowest:
            continue
        others = [n for n in new if n != name and not new[n].shifted and n not in degraded]
        drained = sum(1 for s in new.values() if s.shifted)
        if not state.shifted and drained >= settings.max_drained:
            event(name, ShiftAction.BLOCKED, state.weight, f"max_drained {settings.max_drained}")
            continue
        room = None if trip is None else trip * settings.headroom_ratio
        busy = [n for n in others if room is None or (new[n].smoothed or 0.0) >= room]
        if not others or busy:
            why = "no healthy replica" if not others else f"no headroom on {', '.join(busy)}"
            event(name, ShiftAction.BLOCKED, state.weight, why)
            continue
        amount = max(1, round(state.baseline * settings.step_ratio))
        target = max(lowest, state.weight - amount)
        event(name, ShiftAction.SHIFT, target, f"smoothed P99 over {trip:.3f}s")
        new[name] = _moved(state, target, -1)

    for name, state in list(new.items()):
        if not state.shifted:
            continue
        amount = max(1, round(state.baseline * settings.step_ratio))
        target = min(state.baseline, state.weight + amount)
        if name in degraded:
            # The load went to replicas that are now degraded themselves: the slowdown is
            # fleet-wide (or the shift overloaded them), so the shift helps nobody; step back.
            others = [n for n in new if n != name and not new[n].shifted]
            if others and all(n in degraded for n in others):
                event(name, ShiftAction.RESTORE, target, "every other replica is degraded too")
                new[name] = _moved(state, target, +1)
            continue
        if state.clear_since is None or now - state.clear_since < settings.hold_s:
            continue
        event(name, ShiftAction.RESTORE, target, f"under {clear:.3f}s for {settings.hold_s:g}s")
        new[name] = _moved(state, target, +1)
    return ShiftResult(new, events)
