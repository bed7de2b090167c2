"""The agent's command line: version, logging set-up once, one-line start-up errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agent.cli import build_parser, main, setup_logging
from tuneloop import __version__

NODE = Path(__file__).parents[1] / "fixtures" / "node"


@pytest.fixture(autouse=True)
def restore_logging():
    """configure_logging replaces the root logger's handlers: put them back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"tuneloop-agent {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-format", "json", "--log-level", "debug", "scrape"],
        ["scrape", "--log-format", "json", "--log-level", "debug"],
    ],
)
def test_log_flags_before_or_after_the_command(argv, capsys) -> None:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    logging.getLogger("agent.test").debug("hello %s", "there")
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (entry["level"], entry["message"]) == ("debug", "hello there")
    assert logging.getLogger().level == logging.DEBUG


def test_scrape_logs_only_problems_unless_asked(capsys) -> None:
    code = main(["scrape", "--collectors", "net", "--procfs", str(NODE / "proc")])
    out = capsys.readouterr()
    assert code == 0 and "tuneloop_tcp_retransmitted_segments_total" in out.out
    assert logging.getLogger().level == logging.WARNING


def test_a_non_utf8_config_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "agent.yaml").write_bytes(b"listen: \xff\n")
    assert main(["check-config", "--config", str(tmp_path / "agent.yaml")]) != 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --config:") and "not UTF-8" in line
