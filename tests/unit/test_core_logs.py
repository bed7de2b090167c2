"""Logging set-up: text for people, one JSON object per line for shippers."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tuneloop.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_extra_fields() -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    logging.getLogger("tuner.loop").info("trial %d applied", 3, extra={"experiment": "w"})
    logging.getLogger("tuner.loop").debug("not shown")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "trial 3 applied"
    assert entry["level"] == "info"
    assert entry["logger"] == "tuner.loop"
    assert entry["experiment"] == "w"


def test_text_format_and_bad_values() -> None:
    out = io.StringIO()
    configure_logging("text", "debug", stream=out)
    logging.getLogger("agent").debug("hello")
    assert "DEBUG agent: hello" in out.getvalue()
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml")
    with pytest.raises(ValueError, match="log level"):
        configure_logging("text", "loud")
