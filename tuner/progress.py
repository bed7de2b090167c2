"""Progress output: one line per trial always; a live status line only on a terminal.

On a TTY the line being rewritten shows the phase (warm-up, window), the time left in it and the
current readings, and is cleared before the next permanent line. When stdout is a pipe or a file
(a CronJob's log, a script) nothing but the permanent lines is written, so the output stays one
line per trial and easy to parse.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass(frozen=True)
class MeasureTick:
    """Where a measurement is: its phase, the seconds left in it, the latest readings."""

    phase: str  # "warm-up" or "window"
    left_s: float
    repeat: int = 1
    repeats: int = 1
    readings: Mapping[str, float | None] = field(default_factory=dict)

    def describe(self) -> str:
        what = self.phase if self.repeats == 1 else f"{self.phase} {self.repeat}/{self.repeats}"
        shown = " ".join(f"{k}={fmt(v)}" for k, v in self.readings.items())
        return f"{what}: {self.left_s:.0f}s left" + (f" | {shown}" if shown else "")


class Progress:
    """Writes permanent lines through ``write_line`` and live lines to ``stream`` on a TTY."""

    def __init__(
        self,
        write_line: Callable[[str], None] | None = None,
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
        prefix: str = "",
    ) -> None:
        self.stream = stream or sys.stdout
        self.write_line = write_line or self._print
        self.live_enabled = self.stream.isatty() if live is None else live
        self.prefix = prefix
        self._live_shown = False

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def line(self, text: str) -> None:
        """A permanent line (clears the live line first)."""
        self._clear()
        self.write_line(self.prefix + text)

    def live(self, text: str) -> None:
        """Rewrite the live line (terminals only)."""
        if not self.live_enabled:
            return
        self.stream.write("\r\x1b[K" + self.prefix + text)
        self.stream.flush()
        self._live_shown = True

    def tick(self, label: str, tick: MeasureTick) -> None:
        self.live(f"trial {label} {tick.describe()}")

    def _clear(self) -> None:
        if self._live_shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._live_shown = False

    @classmethod
    def of(cls, progress: Progress | Callable[[str], None] | None) -> Progress:
        """A Progress from a Progress, a line callback (no live output), or None (stdout)."""
        if isinstance(progress, Progress):
            return progress
        if progress is None:
            return cls()
        return cls(progress, live=False)


def fmt(value: Any) -> str:
    """A short rendering of a knob or signal value."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
