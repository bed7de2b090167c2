"""Progress output: live lines on a terminal only, permanent lines always."""

from __future__ import annotations

import io

from tuner.progress import MeasureTick, Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_live_lines_cleared_before_the_next_trial_line():
    out = Tty()
    p = Progress(stream=out)
    p.tick("1/8 #1", MeasureTick("window", 20.0, readings={"p99": 0.25}))
    p.line("trial 1/8 #1 done")
    text = out.getvalue()
    assert "\r\x1b[Ktrial 1/8 #1 window: 20s left | p99=0.25" in text
    assert text.endswith("\r\x1b[Ktrial 1/8 #1 done\n")


def test_a_pipe_gets_one_line_per_trial_and_nothing_else():
    out = io.StringIO()
    p = Progress(stream=out)
    p.tick("1/8 #1", MeasureTick("warm-up", 5.0))
    p.line("trial 1/8 #1 done")
    assert out.getvalue() == "trial 1/8 #1 done\n"


def test_a_callback_gets_lines_only():
    lines: list[str] = []
    p = Progress.of(lines.append)
    p.tick("#1", MeasureTick("window", 1.0, 2, 3))
    p.line("x")
    assert lines == ["x"]
    assert MeasureTick("window", 1.0, 2, 3).describe() == "window 2/3: 1s left"
