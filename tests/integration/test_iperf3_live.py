"""Real iperf3 servers and clients on loopback (and in a network namespace of our own)."""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from agent.bench.cli import add_bench_commands
from agent.bench.fabric import make_schedule
from agent.bench.iperf3 import (
    Iperf3BusyError,
    Iperf3MissingBinaryError,
    Iperf3TimeoutError,
    Iperf3UnreachableError,
    run_client,
)
from agent.bench.iperf3_server import Iperf3Server, Iperf3ServerError
from agent.bench.results import ResultsStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    with Iperf3Server(port=free_port(), bind="127.0.0.1") as srv:
        yield srv


def test_one_second_test(server):
    r = run_client("127.0.0.1", server.port, duration_s=1)
    assert r.throughput_bps > 0
    assert r.mean_rtt_s is not None and r.mean_rtt_s > 0
    assert r.retransmits is not None and r.cpu_local_ratio is not None
    assert r.streams == 1 and not r.reverse


def test_reverse_parallel_with_window(server):
    r = run_client(
        "127.0.0.1", server.port, duration_s=1, streams=2, window_bytes=262144, reverse=True
    )
    assert r.reverse and r.streams == 2 and r.window_bytes == 262144
    assert r.throughput_bps > 0


def test_busy_server_is_retried(server):
    first: dict = {}
    t = threading.Thread(
        target=lambda: first.update(r=run_client("127.0.0.1", server.port, duration_s=3))
    )
    t.start()
    try:
        time.sleep(0.7)  # the first test is running
        with pytest.raises(Iperf3BusyError, match="busy"):
            run_client("127.0.0.1", server.port, duration_s=1, busy_retries=0)
        second = run_client("127.0.0.1", server.port, duration_s=1, busy_retries=10)
        assert second.throughput_bps > 0
    finally:
        t.join(timeout=20)
    assert first["r"].throughput_bps > 0


def test_supervisor_restarts_a_killed_server(server):
    assert server.ensure_running() is False
    old = server.pid
    os.killpg(old, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while server.pid is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.ensure_running() is True
    assert server.pid not in (None, old) and server.restarts == 1
    assert run_client("127.0.0.1", server.port, duration_s=1).throughput_bps > 0


def test_second_server_on_same_port_says_why(server):
    with pytest.raises(Iperf3ServerError, match="in use"):
        Iperf3Server(port=server.port, bind="127.0.0.1").start()


def test_missing_binary_is_a_clear_error():
    with pytest.raises(Iperf3MissingBinaryError, match="no-such-iperf3"):
        run_client("127.0.0.1", 5201, duration_s=1, binary="no-such-iperf3")
    with pytest.raises(Iperf3MissingBinaryError, match="no-such-iperf3"):
        Iperf3Server(port=free_port(), binary="no-such-iperf3").start()


def test_closed_port_is_unreachable():
    with pytest.raises(Iperf3UnreachableError, match="refused"):
        run_client("127.0.0.1", free_port(), duration_s=1, busy_retries=0)


def test_hung_server_is_bounded_by_the_timeout():
    with socket.socket() as silent:  # accepts connections in the kernel, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        with pytest.raises(Iperf3TimeoutError, match=r"overran 1\.5s"):
            run_client("127.0.0.1", port, duration_s=1, timeout_s=1.5)


@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and ip")
def test_server_and_client_in_a_network_namespace():
    ns = f"tl-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        with Iperf3Server(port=5201, netns=ns) as srv:  # the namespace has its own ports
            assert srv.pid is not None
            r = run_client("127.0.0.1", 5201, duration_s=1, netns=ns)
            assert r.throughput_bps > 0
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def cli(argv):
    parser = argparse.ArgumentParser(prog="tuneloop-agent")
    add_bench_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_iperf3_appends_results(server, tmp_path, capsys):
    results = tmp_path / "bench.jsonl"
    peer = f"127.0.0.1:{server.port}"
    assert (
        cli(
            [
                "bench",
                "iperf3",
                "--peer",
                peer,
                "--duration",
                "1",
                "--json",
                "--results",
                str(results),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["port"] == server.port and printed["throughput_bps"] > 0
    assert (
        cli(
            [
                "bench",
                "iperf3",
                "--peer",
                f"127.0.0.1:{free_port()}",
                "--duration",
                "1",
                "--busy-retries",
                "0",
                "--results",
                str(results),
            ]
        )
        == 1
    )
    assert "refused" in capsys.readouterr().err
    kinds = [(r["kind"], r.get("reason")) for r in ResultsStore(results).read()]
    assert kinds == [("iperf3", None), ("iperf3_error", "unreachable")]


def test_cli_fabric_run_runs_my_slots(tmp_path, capsys):
    with (
        Iperf3Server(port=free_port(), bind="127.0.0.1") as a,
        Iperf3Server(port=free_port(), bind="127.0.0.1") as b,
    ):
        hosts = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
        sched_file = tmp_path / "schedule.json"
        make_schedule(hosts, start_at=time.time(), duration_s=1, jitter_s=0.2).dump(sched_file)
        results = tmp_path / "bench.jsonl"
        assert (
            cli(
                [
                    "bench",
                    "fabric-run",
                    "--schedule",
                    str(sched_file),
                    "--me",
                    hosts[0],
                    "--json",
                    "--results",
                    str(results),
                ]
            )
            == 0
        )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["slot"], x["port"]) for x in lines] == [(0, b.port)]  # my only client slot
    assert lines[0]["throughput_bps"] > 0
    assert [r["port"] for r in ResultsStore(results).read()] == [b.port]


def test_agent_runs_its_fabric_slots_in_the_background(tmp_path):
    from agent.bench.background import start_fabric_check

    with (
        Iperf3Server(port=free_port(), bind="127.0.0.1") as a,
        Iperf3Server(port=free_port(), bind="127.0.0.1") as b,
    ):
        hosts = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
        sched_file = tmp_path / "schedule.json"
        make_schedule(hosts, start_at=time.time(), duration_s=1, jitter_s=0.2).dump(sched_file)
        results = tmp_path / "bench.jsonl"
        stop = threading.Event()
        thread = start_fabric_check(sched_file, hosts[1], results, stop)
        thread.join(timeout=30)  # a one-shot schedule: the thread ends after its cycle
        stop.set()
    assert not thread.is_alive()
    records = ResultsStore(results).read()
    assert [r["port"] for r in records] == [a.port]  # host b's client slot tests host a
    assert records[0]["throughput_bps"] > 0


def test_a_broken_schedule_is_an_error_naming_the_file(tmp_path):
    from agent.bench.background import start_fabric_check

    bad = tmp_path / "schedule.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"schedule\.json: cannot read schedule"):
        start_fabric_check(bad, "h1", tmp_path / "bench.jsonl", threading.Event())
