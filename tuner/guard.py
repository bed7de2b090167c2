"""Guardrails between the strategy and the system: bounds, step limits, cooldown, freeze windows.

* **Bounds**: every numeric value is clipped to its knob's bounds (integers rounded).
* **Max relative step**: a numeric value may move at most ``max_relative_step * |incumbent|`` from
  the incumbent per trial (integers may always move by 1; a zero incumbent uses the range instead).
* **Trust region**: a numeric value stays within ``trust_region * (high - low)`` of the incumbent
  (measured in log space for log-scaled knobs). Categorical knobs are not limited by either rule.
* **Cooldown**: at least ``cooldown`` seconds between two applies.
* **Freeze windows** (all times UTC), a list under ``safety.freeze_windows``:

  - weekly: ``{days: [sat, sun], start: "22:00", end: "06:00"}`` -- on each listed day from
    ``start``; an ``end`` at or before ``start`` runs into the next day; ``end: "24:00"`` is
    midnight;
  - absolute: ``{start: "2024-12-20T00:00:00Z", end: "2025-01-02T00:00:00Z"}`` (ISO 8601).

  No apply starts inside a window; the loop waits for it to end (or stops at the wall budget).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tuneloop.validation import fail, join, mapping, no_unknown_keys, string

if TYPE_CHECKING:
    from tuner.spec import Knob, Safety
    from tuner.strategy.base import Params

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class FreezeWindow:
    """A weekly window (``days`` set) or an absolute one (``start_at``/``end_at`` set)."""

    days: tuple[int, ...] = ()  # 0 = Monday
    start_min: int = 0  # minutes after midnight
    end_min: int = 0
    start_at: datetime | None = None
    end_at: datetime | None = None
    text: str = ""

    def contains(self, when: datetime) -> bool:
        """Whether ``when`` (aware or UTC-naive) lies inside the window."""
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if self.start_at is not None and self.end_at is not None:
            return self.start_at <= when < self.end_at
        minute = when.hour * 60 + when.minute
        day = when.weekday()
        if self.end_min > self.start_min:
            return day in self.days and self.start_min <= minute < self.end_min
        # runs past midnight: today's part, or yesterday's window spilling over
        return (day in self.days and minute >= self.start_min) or (
            (day - 1) % 7 in self.days and minute < self.end_min
        )


def _hhmm(value: Any, field: str) -> int:
    text = string(value, field)
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        fail(field, f"must be a time HH:MM (UTC), got {text!r}")
    hours, minutes = int(parts[0]), int(parts[1])
    if not (0 <= minutes < 60 and (hours < 24 or (hours == 24 and minutes == 0))):
        fail(field, f"must be a time between 00:00 and 24:00, got {text!r}")
    return hours * 60 + minutes


def _instant(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = string(value, field)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(field, f"must be an ISO 8601 time like 2025-01-02T00:00:00Z, got {text!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_freeze_window(raw: Any, field: str) -> FreezeWindow:
    """One entry of ``safety.freeze_windows``."""
    raw = mapping(raw, field)
    no_unknown_keys(raw, field, {"days", "start", "end"})
    for key in ("start", "end"):
        if key not in raw:
            fail(join(field, key), "is required")
    if "days" in raw:
        days = raw["days"]
        if not isinstance(days, list) or not days:
            fail(join(field, "days"), f"must be a non-empty list of {', '.join(DAYS)}")
        idx = tuple(
            DAYS.index(string(d, join(join(field, "days"), i), choices=DAYS))
            for i, d in enumerate(days)
        )
        start, end = (
            _hhmm(raw["start"], join(field, "start")),
            _hhmm(raw["end"], join(field, "end")),
        )
        if start == end == 0 or (start == 24 * 60):
            fail(join(field, "start"), "a weekly window needs start before 24:00")
        return FreezeWindow(days=idx, start_min=start, end_min=end, text=f"{days} {start}-{end}")
    start_at, end_at = (
        _instant(raw["start"], join(field, "start")),
        _instant(raw["end"], join(field, "end")),
    )
    if end_at <= start_at:
        fail(join(field, "end"), "must be after start")
    return FreezeWindow(
        start_at=start_at, end_at=end_at, text=f"{start_at.isoformat()} to {end_at.isoformat()}"
    )


class Guard:
    """Turns a proposal into one that is safe to apply, and says when applying is allowed."""

    def __init__(self, safety: Safety, knobs: tuple[Knob, ...]) -> None:
        self.safety = safety
        self.knobs = {k.name: k for k in knobs}

    def constrain(
        self, proposal: Mapping[str, Any], incumbent: Mapping[str, Any] | None
    ) -> tuple[Params, list[str]]:
        """The proposal within bounds, step limit and trust region; notes say what was changed."""
        out: Params = {}
        notes: list[str] = []
        for name, knob in self.knobs.items():
            if name not in proposal:
                raise KeyError(f"proposal lacks knob {name!r}")
            value = proposal[name]
            if knob.type == "categorical" or knob.low is None or knob.high is None:
                out[name] = value
                continue
            low, high = knob.low, knob.high
            x = min(max(float(value), low), high)
            if incumbent is not None and name in incumbent:
                inc = float(incumbent[name])
                lo_lim, hi_lim = self._limits(knob, inc)
                x = min(max(x, lo_lim), hi_lim)
            if knob.type == "int":
                x = float(round(x))
                x = min(max(x, math.ceil(low)), math.floor(high))
            final: int | float = int(x) if knob.type == "int" else x
            if not math.isclose(float(final), float(value), rel_tol=1e-9, abs_tol=1e-12):
                notes.append(f"{name}: {value!r} -> {final!r}")
            out[name] = final
        return out, notes

    def _limits(self, knob: Knob, inc: float) -> tuple[float, float]:
        assert knob.low is not None and knob.high is not None
        lo_lim, hi_lim = knob.low, knob.high
        step = self.safety.max_relative_step
        if step is not None:
            delta = step * abs(inc) if inc != 0 else step * (knob.high - knob.low)
            if knob.type == "int":
                delta = max(delta, 1.0)
            lo_lim, hi_lim = max(lo_lim, inc - delta), min(hi_lim, inc + delta)
        region = self.safety.trust_region
        if region is not None:
            if knob.log and inc > 0:
                span = region * (math.log(knob.high) - math.log(knob.low))
                lo_r, hi_r = inc * math.exp(-span), inc * math.exp(span)
            else:
                span = region * (knob.high - knob.low)
                lo_r, hi_r = inc - span, inc + span
            if knob.type == "int":
                lo_r, hi_r = min(lo_r, inc - 1), max(hi_r, inc + 1)
            lo_lim, hi_lim = max(lo_lim, lo_r), min(hi_lim, hi_r)
        return lo_lim, hi_lim

    def cooldown_remaining(self, now: float, last_apply_at: float | None) -> float:
        """Seconds until the cooldown since the last apply has passed (0 if it has)."""
        if last_apply_at is None:
            return 0.0
        return max(0.0, last_apply_at + self.safety.cooldown_s - now)

    def frozen(self, now: float) -> FreezeWindow | None:
        """The freeze window ``now`` (epoch seconds) lies in, if any."""
        when = datetime.fromtimestamp(now, UTC)
        for window in self.safety.freeze_windows:
            if window.contains(when):
                return window
        return None

    def wait_s(self, now: float, last_apply_at: float | None, step_s: float = 60.0) -> float:
        """Seconds to wait before an apply may start: cooldown, then the end of any freeze."""
        wait = self.cooldown_remaining(now, last_apply_at)
        horizon = 8 * 24 * 3600.0  # a week and a day: any weekly window has ended by then
        while self.frozen(now + wait) is not None and wait < horizon:
            wait += self._freeze_step(now + wait, step_s)
        return wait

    def _freeze_step(self, at: float, step_s: float) -> float:
        """Time to the next minute boundary (windows are minute-aligned) or absolute end."""
        when = datetime.fromtimestamp(at, UTC)
        window = self.frozen(at)
        if window is not None and window.end_at is not None:
            return max((window.end_at - when).total_seconds(), 1e-3)
        nxt = (when + timedelta(minutes=1)).replace(second=0, microsecond=0)
        return max((nxt - when).total_seconds(), min(step_s, 1e-3))
