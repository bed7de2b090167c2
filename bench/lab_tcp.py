"""The tuner against the grid on TCP buffer caps across a 20 ms RTT link (two namespaces).

From 64 KiB caps, ``--trials`` trials of the tuning loop (examples/lab-tcp-buffers.yaml: the
node-tuning reconciler sets the caps in both namespaces, iperf3 across the link is the
objective) against the grid of bench/tcp_window.py (64 KiB to 32 MiB, doubling) measured with the
same probe in the same run. Goal: the tuner's best, re-measured, at least 90% of the grid's best.
Run as root: ``.venv/bin/python -m bench.lab_tcp [--trials 10] [--seconds 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from agent.netlab.link import DelayedLink
from bench.common import save, table
from bench.tcp_window import grid, label
from lab.tcp import TARGET, Iperf3Probe, NetnsBufferApplier, reconcilers_for
from tuner.progress import Progress
from tuner.signals.base import SignalRef
from tuner.spec import load_experiment
from tuner.wiring import Factories, build_loop

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lab-tcp-buffers.yaml"
THROUGHPUT = SignalRef(signal="iperf3_throughput_bytes_per_second")


def throughput(applier: NetnsBufferApplier, probe: Iperf3Probe, size: int, repeats: int) -> float:
    applier.apply({TARGET: size})
    runs = []
    for _ in range(repeats):
        probe.forget()  # a fresh test per repeat
        runs.append(float(probe.value(THROUGHPUT, probe.seconds) or 0.0))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=2, help="iperf3 seconds per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="re-measurements per grid point")
    args = parser.parse_args()
    exp = load_experiment(EXAMPLE)
    with DelayedLink(10.0) as link, tempfile.TemporaryDirectory() as tmp:
        applier = NetnsBufferApplier(reconcilers_for([link.a, link.b], Path(tmp) / "journals"))
        probe = Iperf3Probe(link.a, link.b, link.addr_b, seconds=args.seconds)
        try:
            points = [(s, throughput(applier, probe, s, args.repeats)) for s in grid()]
            applier.apply({TARGET: 64 * 1024})
            factories = Factories(
                appliers=lambda e: {"link": applier}, signals=lambda e: probe, kube_events=None
            )
            loop = build_loop(exp, factories, Path(tmp), progress=Progress(prefix="  "))
            try:
                result = loop.run(max_trials=args.trials, apply=True)
                trials = loop.store.trials(exp.name)
                used = len([t for t in trials if t.kind == "trial"])
            finally:
                loop.store.close()
            assert result.best is not None
            tuned_size = int(result.best.params["buffer_max"])
            tuned = throughput(applier, probe, tuned_size, args.repeats)
        finally:
            probe.stop()
        backend = link.backend
    best_size, best = max(points, key=lambda p: p[1])
    base = points[0][1]
    rows = [[label(s), f"{v / 1e6:,.1f}", f"{v / base:.1f}x", f"{v / best:.2f}"] for s, v in points]
    rows.append(
        [
            f"tuner {label(tuned_size)} ({used} trials)",
            f"{tuned / 1e6:,.1f}",
            f"{tuned / base:.1f}x",
            f"{tuned / best:.2f}",
        ]
    )
    print(
        f"20 ms RTT ({backend} delay), iperf3 {args.seconds} s per point, median of {args.repeats}"
    )
    print(table(["max buffer", "Mbit/s", "vs 64 KiB", "vs grid best"], rows))
    path = save(
        "lab_tcp",
        {
            "rtt_s": 0.02,
            "backend": backend,
            "seconds": args.seconds,
            "repeats": args.repeats,
            "grid": [{"max_bytes": s, "throughput_bps": v} for s, v in points],
            "grid_best": {"max_bytes": best_size, "throughput_bps": best},
            "tuner": {
                "max_bytes": tuned_size,
                "throughput_bps": tuned,
                "trials": used,
                "loop_best_bps": result.best_value,
            },
            "tuner_vs_grid_best": tuned / best,
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
