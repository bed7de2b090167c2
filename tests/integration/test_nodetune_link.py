"""TCP buffer tuning through the reconciler has a real, large effect across a 20 ms RTT link."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.netlab import netns
from agent.netlab.link import DelayedLink
from agent.nodetune.desired import Desired, parse_desired
from agent.nodetune.reconciler import Reconciler

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3"),
]
PORT = 5301


def buffers(generation: int, max_bytes: int) -> Desired:
    default = min(131072, max_bytes)
    triple = f"4096 {default} {max_bytes}"
    return parse_desired(
        {
            "generation": generation,
            "sysctls": {"net.ipv4.tcp_rmem": triple, "net.ipv4.tcp_wmem": triple},
        }
    )


@pytest.fixture(scope="module")
def link() -> Iterator[DelayedLink]:
    with DelayedLink(10.0) as made:
        yield made


def throughput(link: DelayedLink) -> float:
    from agent.bench.iperf3 import run_client
    from agent.bench.iperf3_server import Iperf3Server

    with Iperf3Server(PORT, bind=link.addr_b, netns=link.b):
        result = run_client(link.addr_b, PORT, duration_s=2, netns=link.a, timeout_s=20)
    return float(result.throughput_bps)


def test_small_buffers_cut_throughput_and_rollback_restores_it(link, tmp_path: Path) -> None:
    holders = [netns.spawn_holder(link.a, 120), netns.spawn_holder(link.b, 120)]
    try:
        reconcilers = [
            Reconciler(Path(f"/proc/{h.pid}"), tmp_path / f"journal-{i}.json")
            for i, h in enumerate(holders)
        ]
        for rec in reconcilers:
            assert rec.apply(buffers(1, 16 << 20)).ok
        large = throughput(link)

        for rec in reconcilers:
            assert rec.apply(buffers(2, 64 << 10)).ok
        small = throughput(link)

        for rec in reconcilers:
            assert rec.rollback().ok
            assert rec.current(["net.ipv4.tcp_rmem"]) == {
                "net.ipv4.tcp_rmem": f"4096 131072 {16 << 20}"
            }
        restored = throughput(link)
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()

    assert small < large / 3, (small, large)
    assert restored > small * 3, (restored, small)
    assert restored > large / 2, (restored, large)
