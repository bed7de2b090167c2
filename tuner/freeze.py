"""Freeze windows (all times UTC), a list under ``safety.freeze_windows``.

- weekly: ``{days: [sat, sun], start: "22:00", end: "06:00"}`` -- on each listed day from
  ``start``; an ``end`` at or before ``start`` runs into the next day; ``end: "24:00"`` is
  midnight;
- absolute: ``{start: "2024-12-20T00:00:00Z", end: "2025-01-02T00:00:00Z"}`` (ISO 8601).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tuneloop.validation import fail, join, mapping, no_unknown_keys, string

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
