"""``perf stat`` over a window, system-wide or on one process, and its CSV parser.

Decisions: every requested event gets a status, so a machine without hardware counters (virtual
machines report ``<not supported>`` for cycles and instructions), a missing perf binary or a
``perf_event_paranoid`` refusal is reported per event instead of failing the run:

- ``counted``: a value was read; ``not_counted``: supported, but nothing ran to count it;
- ``not_supported``: the machine has no such counter; ``refused``: perf_event_paranoid;
- ``missing_binary``, ``invalid`` (perf rejected the event name), ``error`` (anything else).

Values are perf's, already scaled for multiplexing; ``running_ratio`` is the share of the window
the counter actually ran. IPC is computed only when cycles and instructions were both counted.
Event names perf prints with modifiers (``cycles:u`` when not privileged) are matched back to the
requested name. perf writes its CSV to a file (``-o``), so errors on stderr never mix with data.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.bench.process import find_binary, run_bounded

DEFAULT_EVENTS: tuple[str, ...] = (
    "cycles",
    "instructions",
    "cache-misses",
    "context-switches",
    "cpu-migrations",
    "page-faults",
)
STATUSES = (
    "counted",
    "not_counted",
    "not_supported",
    "refused",
    "missing_binary",
    "invalid",
    "error",
)
TIMEOUT_MARGIN_S = 10.0
_EVENT_RE = re.compile(r"^[A-Za-z0-9_./:=,@\-]+$")


class PerfParseError(ValueError):
    """perf's CSV output was not what ``perf stat -x`` prints."""


@dataclass(frozen=True)
class PerfEvent:
    """One event's outcome."""

    event: str
    status: str
    value: float | None = None
    unit: str = ""
    running_ratio: float | None = None
    message: str = ""

    @property
    def supported(self) -> bool:
        """True when the machine can count this event (counted or merely idle)."""
        return self.status in ("counted", "not_counted")


@dataclass(frozen=True)
class PerfResult:
    """A perf stat window: one :class:`PerfEvent` per requested event."""

    events: tuple[PerfEvent, ...]
    window_s: float
    pid: int | None
    started_at: float

    def value(self, event: str) -> float | None:
        """The counted value of ``event``, or None when it was not counted."""
        for ev in self.events:
            if ev.event == event and ev.status == "counted":
                return ev.value
        return None

    @property
    def ipc(self) -> float | None:
        """Instructions per cycle, when both were counted and cycles > 0."""
        cycles, instructions = self.value("cycles"), self.value("instructions")
        if cycles is None or instructions is None or cycles <= 0:
            return None
        return instructions / cycles

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (IPC included)."""
        data = asdict(self)
        data["ipc"] = self.ipc
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PerfResult:
        """Rebuild from :meth:`to_json` output; ValueError names a bad field."""
        try:
            events = []
            for raw in data["events"]:
                status = raw["status"]
                if status not in STATUSES:
                    raise ValueError(f"events.status: unknown status {status!r}")
                value = raw.get("value")
                if value is not None and (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                ):
                    raise ValueError(f"events.value: expected a finite number, got {value!r}")
                events.append(
                    PerfEvent(
                        event=str(raw["event"]),
                        status=status,
                        value=None if value is None else float(value),
                        unit=str(raw.get("unit", "")),
                        running_ratio=_opt_ratio(raw.get("running_ratio")),
                        message=str(raw.get("message", "")),
                    )
                )
            return cls(
                events=tuple(events),
                window_s=float(data["window_s"]),
                pid=data.get("pid"),
                started_at=float(data["started_at"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"perf record: missing or malformed field ({exc})") from None


def _opt_ratio(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"events.running_ratio: expected 0..1, got {value!r}")
    return float(value)


def _number(text: str, what: str, lineno: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PerfParseError(f"perf CSV line {lineno}: {what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise PerfParseError(f"perf CSV line {lineno}: {what} {text!r} is not a finite count >= 0")
    return value


def parse_perf_csv(text: str, sep: str = ",") -> list[PerfEvent]:
    """Parse ``perf stat -x SEP`` output (value, unit, event, run time, percentage, ...)."""
    events: list[PerfEvent] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(sep)
        if len(fields) < 3 or not fields[2].strip():
            raise PerfParseError(f"perf CSV line {lineno}: expected value{sep}unit{sep}event...")
        value_text, unit, event = fields[0].strip(), fields[1].strip(), fields[2].strip()
        ratio = None
        if len(fields) > 4 and fields[4].strip():
            ratio = _number(fields[4].strip(), "percentage", lineno) / 100.0
        if value_text == "<not supported>":
            events.append(PerfEvent(event, "not_supported", unit=unit))
        elif value_text == "<not counted>":
            events.append(PerfEvent(event, "not_counted", unit=unit, running_ratio=ratio))
        else:
            value = _number(value_text, "value", lineno)
            events.append(PerfEvent(event, "counted", value, unit, ratio))
    return events


def _base_name(event: str) -> str:
    """``cycles:u`` -> ``cycles``; raw PMU events (``cpu/.../``) keep their name."""
    return event if event.endswith("/") else event.split(":", 1)[0]


def _all(events: Sequence[str], status: str, message: str) -> tuple[PerfEvent, ...]:
    return tuple(PerfEvent(ev, status, message=message) for ev in events)


def _failure(events: Sequence[str], stderr: str, returncode: int) -> tuple[PerfEvent, ...]:
    text = " ".join(stderr.split())
    if "perf_event_paranoid" in text:
        setting = re.search(r"perf_event_paranoid setting is (-?\d+)", text)
        level = f"={setting.group(1)}" if setting else ""
        message = (
            f"refused by kernel.perf_event_paranoid{level} (needs CAP_PERFMON or a lower setting)"
        )
        return _all(events, "refused", message)
    bad = re.search(r"event syntax error: '([^']*)'", text)
    if bad:
        out = []
        for ev in events:
            if ev == bad.group(1) or bad.group(1).startswith(ev):
                out.append(PerfEvent(ev, "invalid", message=f"perf rejected event {ev!r}"))
            else:
                out.append(PerfEvent(ev, "error", message="not run: another event was invalid"))
        return tuple(out)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = lines[0][:200] if lines else f"exit status {returncode}"
    return _all(events, "error", f"perf stat failed: {first}")


def _validate(window_s: float, pid: int | None, events: Sequence[str]) -> None:
    if not math.isfinite(window_s) or window_s <= 0:
        raise ValueError(f"window_s: expected a positive number of seconds, got {window_s}")
    if pid is not None and (isinstance(pid, bool) or pid <= 0):
        raise ValueError(f"pid: expected a positive process id, got {pid}")
    if not events:
        raise ValueError("events: at least one event is needed")
    for ev in events:
        if not _EVENT_RE.match(ev) or ev.startswith("-"):
            raise ValueError(f"events: invalid perf event name {ev!r}")


def run_perf_stat(
    window_s: float,
    pid: int | None = None,
    events: Sequence[str] = DEFAULT_EVENTS,
    binary: str = "perf",
) -> PerfResult:
    """Count ``events`` for ``window_s`` seconds, system-wide (``-a``) or on process ``pid``."""
    _validate(window_s, pid, events)
    events = tuple(events)
    started = time.time()

    def result(outcome: tuple[PerfEvent, ...]) -> PerfResult:
        return PerfResult(outcome, window_s, pid, started)

    resolved = find_binary(binary)
    if resolved is None:
        return result(_all(events, "missing_binary", f"perf binary {binary!r} not found"))
    sep = ";" if any("," in ev for ev in events) else ","
    with tempfile.TemporaryDirectory(prefix="tuneloop-perf-") as tmp:
        out_file = Path(tmp) / "stat.csv"
        argv = [resolved, "stat", "-x", sep, "-o", str(out_file)]
        for ev in events:
            argv += ["-e", ev]
        argv += ["-a"] if pid is None else ["-p", str(pid)]
        argv += ["--", "sleep", f"{window_s:g}"]
        done = run_bounded(argv, window_s + TIMEOUT_MARGIN_S)
        text = out_file.read_text(errors="replace") if out_file.exists() else ""
    if done.timed_out:
        return result(_all(events, "error", f"perf stat overran {window_s + TIMEOUT_MARGIN_S:g}s"))
    if done.returncode != 0:
        return result(_failure(events, done.stderr, done.returncode))
    try:
        parsed = parse_perf_csv(text, sep)
    except PerfParseError as exc:
        return result(_all(events, "error", str(exc)))
    by_name = {_base_name(ev.event): ev for ev in parsed}
    by_name.update({ev.event: ev for ev in parsed})
    outcome = []
    for ev in events:
        got = by_name.get(ev) or by_name.get(_base_name(ev))
        if got is None:
            outcome.append(PerfEvent(ev, "error", message="perf printed no line for this event"))
        else:
            outcome.append(PerfEvent(ev, got.status, got.value, got.unit, got.running_ratio))
    return result(tuple(outcome))
