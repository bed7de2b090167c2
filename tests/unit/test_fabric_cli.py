"""The bench CLI's schedule command and its bad-input handling (no programs run)."""

import argparse
import json

import pytest

from agent.bench.cli import add_bench_commands
from agent.bench.fabric import FabricSchedule


def cli(argv):
    parser = argparse.ArgumentParser(prog="tuneloop-agent")
    add_bench_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_fabric_schedule_writes_file(tmp_path, capsys):
    out = tmp_path / "schedule.json"
    rc = cli(
        [
            "bench",
            "fabric-schedule",
            "--hosts",
            "a,b,c,d",
            "-o",
            str(out),
            "--duration",
            "2",
            "--start-at",
            "1000",
            "--period",
            "3600",
        ]
    )
    assert rc == 0
    sched = FabricSchedule.load(out)
    assert sched.hosts == ("a", "b", "c", "d") and len(sched.rounds) == 3
    assert sched.start_at == 1000 and sched.period_s == 3600
    text = capsys.readouterr().out
    assert "3 rounds" in text and "client" in text


def test_fabric_schedule_json(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert cli(["bench", "fabric-schedule", "--hosts", "a,b,c", "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out.read_text())


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["bench", "fabric-schedule", "--hosts", "a", "-o", "{tmp}/s.json"], "at least two"),
        (["bench", "fabric-run", "--schedule", "{tmp}/missing.json", "--me", "a"], "missing.json"),
        (["bench", "iperf3", "--peer", "a:99999"], "port must be"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli(argv) == 2
    assert words in capsys.readouterr().err


def test_help_explains_each_command(capsys):
    for sub in ("iperf3", "perf", "fabric-schedule", "fabric-run"):
        with pytest.raises(SystemExit):
            cli(["bench", sub, "--help"])
        text = capsys.readouterr().out
        assert "--json" in text and "usage: tuneloop-agent bench " + sub in text
