"""Real perf stat runs: software events are counted, hardware ones marked supported or not."""

import argparse
import json
import shutil
import subprocess
import sys

import pytest

from agent.bench.cli import add_bench_commands
from agent.bench.perf import run_perf_stat
from agent.bench.results import ResultsStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("perf") is None, reason="perf is not installed"),
]

SOFTWARE = ("context-switches", "cpu-migrations", "page-faults")


def test_system_wide_window():
    r = run_perf_stat(0.3)
    by = {e.event: e for e in r.events}
    assert set(by) == {"cycles", "instructions", "cache-misses", *SOFTWARE}
    if by["context-switches"].status == "refused":
        pytest.skip("perf_event_paranoid refuses system-wide counting here")
    switches = by["context-switches"]
    assert switches.status == "counted" and switches.value is not None and switches.value > 0
    assert by["page-faults"].status == "counted"
    for hw in ("cycles", "instructions", "cache-misses"):
        assert by[hw].status in ("counted", "not_supported")
        assert (by[hw].value is not None) == (by[hw].status == "counted")
    if by["cycles"].status == by["instructions"].status == "counted":
        assert r.ipc is not None and r.ipc > 0
    else:
        assert r.ipc is None


def test_one_busy_process():
    code = (
        "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end:\n    [0] * 9999\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        r = run_perf_stat(0.3, pid=child.pid, events=["page-faults", "task-clock", "cycles"])
    finally:
        child.kill()
        child.wait()
    by = {e.event: e for e in r.events}
    assert r.pid == child.pid
    assert by["task-clock"].status == "counted" and by["task-clock"].unit == "msec"
    task_clock = by["task-clock"].value
    assert task_clock is not None and task_clock > 0
    assert by["cycles"].status in ("counted", "not_supported")


def test_invalid_event_is_reported_not_raised():
    r = run_perf_stat(0.1, events=["no-such-event-xyz", "page-faults"])
    assert r.events[0].status == "invalid"
    assert r.events[1].status == "error"


def test_cli_perf(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="tuneloop-agent")
    add_bench_commands(parser.add_subparsers(dest="command", required=True))
    results = tmp_path / "bench.jsonl"
    args = parser.parse_args(
        [
            "bench",
            "perf",
            "--window",
            "0.2",
            "--events",
            "cycles,context-switches",
            "--json",
            "--results",
            str(results),
        ]
    )
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["event"] for e in out["events"]] == ["cycles", "context-switches"]
    assert ResultsStore(results).read()[0]["kind"] == "perf"
    args = parser.parse_args(["bench", "perf", "--window", "0.2", "--results", str(results)])
    assert args.func(args) == 0
    table = capsys.readouterr().out
    assert "context-switches" in table and "IPC:" in table
