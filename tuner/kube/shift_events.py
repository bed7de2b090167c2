"""The traffic shifter's audit records as Kubernetes Events: reasons, and messages with readings.

Decisions:
- every weight change is an Event: a shift (``TuneloopTrafficShifted``, Warning: a replica is
  degraded), a restore step or a restore of every baseline (``TuneloopTrafficRestored``,
  Normal), and a failure to apply, to restore or to run a step (``TuneloopShiftFailed``,
  Warning); a dry run's advised steps are Normal Events of their own reasons;
- a blocked shift (a capacity guard kept the weight) makes no Event: it repeats every interval
  while the fleet has no headroom, and would flood ``kubectl describe``; the audit log and
  ``tuneloop_shift_events_total{action="blocked"}`` keep it;
- the message names the replica, the weight change and the readings behind it (the smoothed
  P99 against its threshold, and every replica's reading), in seconds, as ``kubectl`` shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# audit action (tuner.shift.runner, tuner.shift.service) -> (reason, type)
SHIFT_REASONS: dict[str, tuple[str, str]] = {
    "shift": ("TuneloopTrafficShifted", "Warning"),
    "restore": ("TuneloopTrafficRestored", "Normal"),
    "shift-restore-all": ("TuneloopTrafficRestored", "Normal"),
    "shift-failed": ("TuneloopShiftFailed", "Warning"),
    "shift-restore-failed": ("TuneloopShiftFailed", "Warning"),
    "shift-error": ("TuneloopShiftFailed", "Warning"),
    "shift-advised": ("TuneloopTrafficShiftAdvised", "Normal"),
    "restore-advised": ("TuneloopTrafficRestoreAdvised", "Normal"),
}


def is_shift_record(entry: Mapping[str, Any]) -> bool:
    """True for a record the shifter wrote (its ``experiment`` field is the shift's name)."""
    return str(entry.get("action", "")) in SHIFT_REASONS


def _seconds(value: Any) -> str:
    return f"{float(value):.3f}s" if isinstance(value, int | float) else "none"


def _weights(value: Any) -> str:
    if not isinstance(value, Mapping) or not value:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items(), key=str))


def describe_shift(entry: Mapping[str, Any]) -> str:
    """A short, human message for one shifter record, with the readings behind it."""
    action, name = entry.get("action"), entry.get("experiment")
    parts = [f"{name}: {action}"]
    if "target" in entry:
        step = f"{entry['target']} weight {entry.get('weight_from')} -> {entry.get('weight_to')}"
        if entry.get("balancer"):
            step += f" on {entry['balancer']}"
        parts.append(step)
    if "p99_smoothed" in entry or "threshold" in entry:
        parts.append(
            f"smoothed P99 {_seconds(entry.get('p99_smoothed'))}"
            f" (threshold {_seconds(entry.get('threshold'))})"
        )
    if entry.get("reason"):
        parts.append(f"reason={entry['reason']}")
    if weights := _weights(entry.get("weights")):
        parts.append(f"weights {weights}")
    readings = entry.get("readings")
    if isinstance(readings, Mapping) and readings:
        shown = ", ".join(f"{k}={_seconds(v)}" for k, v in sorted(readings.items(), key=str))
        parts.append(f"P99 readings {shown}")
    if entry.get("error"):
        parts.append(f"error={entry['error']}")
    return "; ".join(parts)
