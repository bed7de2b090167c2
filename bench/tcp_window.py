"""TCP throughput over a 20 ms RTT link against the tcp_rmem/tcp_wmem maximum.

The oracle the tuner's TCP-buffer experiments are held against: a DelayedLink with 10 ms each way
(20 ms RTT), the buffer maxima set through the node-tuning reconciler in both namespaces (receiver
and sender), and iperf3 with autotuning (no ``-w``) across it. Grid: 64 KiB to 32 MiB, doubling;
the 64 KiB row is the baseline every ratio is taken against, measured in the same run.

Columns: the buffer maximum, iperf3's received throughput, the ratio to the baseline, the
window-limited ceiling ``max / RTT`` (what a full buffer of data in flight per round trip would
carry; the kernel keeps part of the receive buffer for overhead, so expect less), and the
bandwidth-delay product of the measured rate (how much data was really in flight).

Run as root: ``.venv/bin/python -m bench.tcp_window [--seconds 3] [--repeats 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from agent.bench.iperf3 import run_client
from agent.bench.iperf3_server import Iperf3Server
from agent.netlab import netns
from agent.netlab.link import DelayedLink
from agent.nodetune.desired import parse_desired
from agent.nodetune.reconciler import Reconciler
from bench.common import save, table

ONE_WAY_MS = 10.0
RTT_S = 2 * ONE_WAY_MS / 1000
PORT = 5311
KIB = 1024


def grid() -> list[int]:
    """64 KiB .. 32 MiB, doubling."""
    sizes, size = [], 64 * KIB
    while size <= 32 * KIB * KIB:
        sizes.append(size)
        size *= 2
    return sizes


def label(size: int) -> str:
    return f"{size // (KIB * KIB)} MiB" if size >= KIB * KIB else f"{size // KIB} KiB"


def set_buffers(reconcilers: list[Reconciler], generation: int, max_bytes: int) -> None:
    triple = f"4096 {min(131072, max_bytes)} {max_bytes}"
    desired = parse_desired(
        {
            "generation": generation,
            "sysctls": {"net.ipv4.tcp_rmem": triple, "net.ipv4.tcp_wmem": triple},
        }
    )
    for rec in reconcilers:
        result = rec.apply(desired)
        if not result.ok:
            raise RuntimeError(f"applying {triple}: {result.error}")


def measure(link: DelayedLink, seconds: float) -> float:
    with Iperf3Server(PORT, bind=link.addr_b, netns=link.b):
        result = run_client(
            link.addr_b, PORT, duration_s=seconds, netns=link.a, timeout_s=seconds + 20
        )
    return float(result.throughput_bps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="iperf3 duration per point")
    parser.add_argument("--repeats", type=int, default=1, help="runs per point (median kept)")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    with DelayedLink(ONE_WAY_MS) as link, tempfile.TemporaryDirectory() as tmp:
        reconcilers = [
            Reconciler(Path("/proc"), Path(tmp) / f"{side}.json", netns=netns.NETNS_DIR / name)
            for side, name in (("a", link.a), ("b", link.b))
        ]
        for generation, size in enumerate(grid(), start=1):
            set_buffers(reconcilers, generation, size)
            runs = [measure(link, args.seconds) for _ in range(args.repeats)]
            rows.append(
                {"max_bytes": size, "throughput_bps": statistics.median(runs), "runs": runs}
            )
        backend = link.backend

    baseline = rows[0]["throughput_bps"]
    printable = []
    for row in rows:
        row["ratio_to_64k"] = row["throughput_bps"] / baseline
        row["ceiling_bps"] = row["max_bytes"] * 8 / RTT_S
        row["in_flight_bytes"] = row["throughput_bps"] * RTT_S / 8
        printable.append(
            [
                label(row["max_bytes"]),
                f"{row['throughput_bps'] / 1e6:,.1f}",
                f"{row['ratio_to_64k']:.1f}x",
                f"{row['ceiling_bps'] / 1e6:,.0f}",
                f"{row['in_flight_bytes'] / KIB:,.0f} KiB",
            ]
        )
    headers = ["max buffer", "Mbit/s", "vs 64 KiB", "max/RTT Mbit/s", "BDP at rate"]
    print(f"20 ms RTT ({backend} delay), iperf3 {args.seconds:g} s per point")
    print(table(headers, printable))
    path = save(
        "tcp_window",
        {
            "rtt_s": RTT_S,
            "backend": backend,
            "seconds": args.seconds,
            "repeats": args.repeats,
            "baseline": "64 KiB max buffer",
            "rows": rows,
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
