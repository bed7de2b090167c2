"""DelayedLink: the delay and rate hold, and nothing is left behind, even after a kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.netlab import netns
from agent.netlab.link import DelayedLink, netem_available
from agent.netlab.netns import NetlabError
from agent.nodetune.sysctl import run_in_netns

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]


def connect_rtt(link: DelayedLink) -> float:
    """Seconds for a TCP handshake from A to B (one round trip)."""
    server = run_in_netns(netns.NETNS_DIR / link.b, lambda: socket.create_server((link.addr_b, 0)))
    port = server.getsockname()[1]
    try:
        client = run_in_netns(netns.NETNS_DIR / link.a, socket.socket)
        with client:
            start = time.monotonic()
            client.connect((link.addr_b, port))
            return time.monotonic() - start
    finally:
        server.close()


def transfer_seconds(link: DelayedLink, nbytes: int) -> float:
    """Seconds to push ``nbytes`` from A to B and get the reply that B read them all."""
    server = run_in_netns(netns.NETNS_DIR / link.b, lambda: socket.create_server((link.addr_b, 0)))
    port = server.getsockname()[1]
    result: list[int] = []

    def drain() -> None:
        conn, _ = server.accept()
        with conn:
            got = 0
            while got < nbytes:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
            conn.sendall(b"k")
            result.append(got)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    client = run_in_netns(netns.NETNS_DIR / link.a, socket.socket)
    with client, server:
        client.settimeout(20)
        client.connect((link.addr_b, port))
        start = time.monotonic()
        client.sendall(b"x" * nbytes)
        assert client.recv(1) == b"k"
        elapsed = time.monotonic() - start
    thread.join(5)
    assert result == [nbytes]
    return elapsed


def test_round_trip_is_twice_the_one_way_delay() -> None:
    with DelayedLink(10.0) as link:
        assert link.backend in ("tun", "netem")
        rtts = sorted(connect_rtt(link) for _ in range(5))
    assert 0.020 <= rtts[2] < 0.035, rtts


def test_rate_limits_throughput() -> None:
    with DelayedLink(1.0, rate_mbit=40.0) as link:
        elapsed = transfer_seconds(link, 2_000_000)  # 16 Mbit at 40 Mbit/s: >= 0.4 s
    assert 0.38 <= elapsed < 2.0, elapsed


def test_cleanup_on_exit_and_on_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"), DelayedLink(1.0) as link:
        relay_pid = link._relay.pid if link._relay else None
        assert {link.a, link.b} <= set(netns.list_namespaces())
        raise RuntimeError("boom")
    assert not {link.a, link.b} & set(netns.list_namespaces())
    if relay_pid is not None:
        assert not Path(f"/proc/{relay_pid}").exists() or _zombie(relay_pid)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


CHILD = """
import sys, time
from agent.netlab.link import DelayedLink, netem_available
from agent.netlab.netns import NetlabError
link = DelayedLink(1.0).__enter__()
print(link.a, link.b, link._relay.pid if link._relay else 0, flush=True)
time.sleep(60)
"""


def test_killed_owner_leaves_relay_dead_and_janitor_removes_namespaces() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert child.stdout is not None
        ns_a, ns_b, relay = child.stdout.readline().split()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        deadline = time.monotonic() + 5
        while int(relay) and Path(f"/proc/{relay}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not int(relay) or not Path(f"/proc/{relay}").exists()
        assert {ns_a, ns_b} <= set(netns.list_namespaces())  # the kill left them
        removed = netns.janitor()
        assert {ns_a, ns_b} <= set(removed)
        assert not {ns_a, ns_b} & set(netns.list_namespaces())
    finally:
        if child.poll() is None:
            child.kill()
        for name in netns.list_namespaces():
            if netns.owner_pid(name) == child.pid:
                netns.delete_namespace(name)


def test_janitor_spares_namespaces_of_live_owners() -> None:
    with netns.Namespace() as mine:
        assert netns.owner_pid(mine.name) == os.getpid()
        assert mine.name not in netns.janitor()
        assert mine.name in netns.list_namespaces()
    assert mine.name not in netns.list_namespaces()


@pytest.mark.skipif(netem_available(), reason="this kernel has netem")
def test_netem_requested_without_netem_fails_clearly_and_cleans_up() -> None:
    before = set(netns.list_namespaces())
    link = DelayedLink(1.0, backend="netem")
    with pytest.raises(NetlabError, match="netem"), link:
        pass
    assert set(netns.list_namespaces()) <= before
