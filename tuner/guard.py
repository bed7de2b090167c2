"""Guardrails between the strategy and the system: bounds, step limits, cooldown, freeze windows.

* **Bounds**: every numeric value is clipped to its knob's bounds (integers rounded).
* **Max relative step**: a numeric value may move at most ``max_relative_step * |incumbent|`` from
  the incumbent per trial (integers may always move by 1; a zero incumbent uses the range instead).
* **Trust region**: a numeric value stays within ``trust_region * (high - low)`` of the incumbent
  (measured in log space for log-scaled knobs). Categorical knobs are not limited by either rule.
* **Cooldown**: at least ``cooldown`` seconds between two applies.
* **Freeze windows**: see :mod:`tuner.freeze`. No apply starts inside a window; the loop waits
  for it to end (or stops at the wall budget).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tuner.freeze import FreezeWindow

if TYPE_CHECKING:
    from tuner.spec import Knob, Safety
    from tuner.strategy.base import Params

log = logging.getLogger(__name__)


def _number(value: object) -> float | None:
    """A numeric reference point, or None (an unset value, e.g. a key missing from a ConfigMap,
    reads as ""): then only the bounds limit the proposal."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


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
            inc = _number(incumbent.get(name)) if incumbent is not None else None
            if inc is not None:
                lo_lim, hi_lim = self._limits(knob, inc)
                x = min(max(x, lo_lim), hi_lim)
            if knob.type == "int":
                x = float(round(x))
                x = min(max(x, math.ceil(low)), math.floor(high))
            final: int | float = int(x) if knob.type == "int" else x
            if not math.isclose(float(final), float(value), rel_tol=1e-9, abs_tol=1e-12):
                notes.append(f"{name}: {value!r} -> {final!r}")
            out[name] = final
        if notes:
            log.debug("guard limited the proposal: %s", ", ".join(notes))
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
