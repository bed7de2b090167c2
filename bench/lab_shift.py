"""Traffic shifting on the local lab: a replica slows to a quarter of its speed for a while.

Three identical replicas (H100 profile) behind a real HAProxy, an open-loop offered load
(``--rate``), client-side exact P99 from the load generator's raw samples. Three arms in the same
run, each with the same seeds and the same incident script:

- ``static``: the tuned weights (equal, since the replicas are identical), left alone;
- ``leastconn``: HAProxy's leastconn backend over the same replicas;
- ``shifter``: the tuned weights with ``tuneloop shift``'s loop running (in-process, reading the
  agent's server-side P99 per replica from Prometheus);
- ``leastconn+shifter`` (beside the three): the shifter setting weights on the leastconn backend,
  which HAProxy's leastconn honours.

Phases per arm: warm-up, ``before``, ``incident`` (replica r0 runs 25% of the time: the lab's
SIGSTOP/SIGCONT throttle), ``after``. Reported: P99 per phase, the ratios to static and to
leastconn during the incident, the time from the slowdown to the first shift, from the smoothed
P99 crossing the threshold to the first shift (in intervals), from recovery to full restore, and
the number of weight reversals. Results go to bench/results/lab_shift.json.
Run: ``.venv/bin/python -m bench.lab_shift [--rate 23] [--incident 60]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import save, table
from lab.lab import Lab, LabConfig, running_lab
from lab.throttle import Throttle
from tuneloop.clock import RealClock
from tuner.appliers.haproxy import HaproxyApplier
from tuner.audit import AuditLog
from tuner.shift.config import parse_shift_config
from tuner.shift.runner import Shifter
from tuner.signals.prometheus import PrometheusSignals

TARGETS = [f"llm/r{i}" for i in range(3)]
BASELINE = dict.fromkeys(TARGETS, 32)
TIMEOUT_S = 10


def load_phase(lab: Lab, port: str, seconds: float, rate: float, seed: int, tmp: Path) -> Any:
    """One bounded loadgen run; its exact summary."""
    summary = tmp / f"summary-{time.monotonic_ns()}.json"
    args = ["--target", f"127.0.0.1:{lab.port(port)}", "--rate", str(rate)]
    args += ["--duration", str(seconds), "--max-requests", str(int(rate * seconds * 2))]
    args += ["--timeout", str(TIMEOUT_S), "--seed", str(seed), "--summary", str(summary)]
    run = lab.start_load(args, name="bench-load")
    run.proc.wait(timeout=seconds + TIMEOUT_S + 30)
    lab.stop("bench-load")
    return json.loads(summary.read_text())


class Background:
    """The shifter ticking in a thread, with a timeline of its readings."""

    def __init__(self, shifter: Shifter, interval_s: float) -> None:
        self.shifter = shifter
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.timeline: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            result = self.shifter.tick()
            self.timeline.append(
                {
                    "t": time.time(),
                    "weights": result.weights,
                    "smoothed": {k: s.smoothed for k, s in result.states.items()},
                    "events": [e.action.value for e in result.events],
                }
            )
            self.stop.wait(max(0.0, self.interval_s - (time.monotonic() - began)))


def shifter_for(lab: Lab, state: Path, args: argparse.Namespace, backend: str) -> Shifter:
    address = f"127.0.0.1:{lab.port('haproxy_admin')}"
    config = parse_shift_config(
        {
            "name": "bench",
            "signals": {"prometheus": lab.url("prometheus")},
            "balancer": {"kind": "haproxy", "address": address},
            "replicas": [
                {"target": f"{backend}/r{i}", "inference_target": f"r{i}"} for i in range(3)
            ],
            "latency": {"window": f"{args.window}s"},
            "interval": f"{args.interval}s",
            "policy": {
                "threshold": f"{args.threshold}s",
                "clear_ratio": 0.7,
                "hold": f"{args.hold}s",
                "ema_alpha": 0.5,
                "step_ratio": args.step,
                "min_weight": 1,
                "max_drained": 1,
            },
        }
    )
    clock = RealClock()
    return Shifter(
        config,
        HaproxyApplier(address),
        PrometheusSignals(lab.url("prometheus")),
        clock=clock,
        audit=AuditLog(state / "audit.jsonl", clock=clock),
        state_dir=state,
    )


def run_arm(lab: Lab, arm: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    admin = HaproxyApplier(f"127.0.0.1:{lab.port('haproxy_admin')}")
    admin.apply(BASELINE)
    admin.apply({f"llm_leastconn/r{i}": 32 for i in range(3)})
    leastconn = arm.startswith("leastconn")
    port = "haproxy_leastconn" if leastconn else "haproxy"
    bg = None
    if arm.endswith("shifter"):
        backend = "llm_leastconn" if leastconn else "llm"
        bg = Background(shifter_for(lab, tmp / arm, args, backend), args.interval)
        bg.shifter.start()
        bg.thread.start()
    out: dict[str, Any] = {"arm": arm}
    try:
        load_phase(lab, port, args.warmup, args.rate, args.seed, tmp)
        out["before"] = load_phase(lab, port, args.before, args.rate, args.seed + 1, tmp)
        slowed_at = time.time()
        with Throttle(lab.record("r0").pid, run_fraction=0.25):
            out["incident"] = load_phase(lab, port, args.incident, args.rate, args.seed + 2, tmp)
        recovered_at = time.time()
        out["after"] = load_phase(lab, port, args.after, args.rate, args.seed + 3, tmp)
    finally:
        if bg is not None:
            bg.stop.set()
            bg.thread.join(timeout=30)
    if bg is not None:
        out.update(shift_timing(bg, slowed_at, recovered_at, args))
    return out


def shift_timing(
    bg: Background, slowed_at: float, recovered_at: float, args: argparse.Namespace
) -> dict[str, Any]:
    """When the EMA crossed, when the first shift came, when weights were back, reversals."""
    line = bg.timeline
    r0 = next(t for t in line[0]["weights"] if t.endswith("/r0"))
    baseline = {t: 32 for t in line[0]["weights"]}
    crossed = next((p["t"] for p in line if (p["smoothed"][r0] or 0) > args.threshold), None)
    first = next((p["t"] for p in line if "shift" in p["events"]), None)
    restored = next(
        (p["t"] for p in line if p["t"] > recovered_at and p["weights"] == baseline), None
    )
    under = next(
        (
            p["t"]
            for p in line
            if p["t"] > recovered_at and (p["smoothed"][r0] or 0) < 0.7 * args.threshold
        ),
        None,
    )
    directions = []
    for prev, cur in itertools.pairwise(line):
        delta = cur["weights"][r0] - prev["weights"][r0]
        if delta:
            directions.append(1 if delta > 0 else -1)
    reversals = sum(1 for a, b in itertools.pairwise(directions) if a != b)
    return {
        "slowdown_to_first_shift_s": None if first is None else first - slowed_at,
        "ema_cross_to_first_shift_intervals": (
            None if first is None or crossed is None else (first - crossed) / args.interval
        ),
        "recovery_to_restore_s": None if restored is None else restored - recovered_at,
        "clear_to_restore_s": None if restored is None or under is None else restored - under,
        "reversals": reversals,
        "min_weight_r0": min(p["weights"][r0] for p in line),
        "timeline": line,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=23.0, help="offered requests per second")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--before", type=float, default=30.0)
    parser.add_argument("--incident", type=float, default=60.0)
    parser.add_argument("--after", type=float, default=45.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--interval", type=float, default=1.0, help="shifter interval (s)")
    parser.add_argument("--window", type=float, default=4.0, help="P99 window (s)")
    parser.add_argument("--threshold", type=float, default=0.5, help="P99 trip threshold (s)")
    parser.add_argument("--hold", type=float, default=10.0, help="restore hold (s)")
    parser.add_argument("--step", type=float, default=0.5, help="step, a fraction of baseline")
    args = parser.parse_args()
    results: dict[str, Any] = {"settings": vars(args), "arms": {}}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        config = LabConfig(
            tmp / "lab",
            replicas=("H100", "H100", "H100"),
            balancer="haproxy",
            die_with_parent=True,
            tuner_metrics=False,
        )
        with running_lab(config) as lab:
            for arm in ("static", "leastconn", "shifter", "leastconn+shifter"):
                print(f"arm {arm} ...", flush=True)
                results["arms"][arm] = run_arm(lab, arm, args, tmp)
    arms = results["arms"]
    rows = []
    for arm, data in arms.items():
        rows.append(
            [
                arm,
                data["before"]["e2e_p99_s"],
                data["incident"]["e2e_p99_s"],
                data["after"]["e2e_p99_s"],
                data["incident"]["error_ratio"],
                data["incident"]["e2e_p99_s"] / arms["static"]["incident"]["e2e_p99_s"],
                data["incident"]["e2e_p99_s"] / arms["leastconn"]["incident"]["e2e_p99_s"],
            ]
        )
    print(
        table(
            ["arm", "P99 before", "P99 incident", "P99 after", "errors", "vs static", "vs lc"],
            rows,
        )
    )
    for name in ("shifter", "leastconn+shifter"):
        print_timing(name, arms[name])
    path = save("lab_shift", results)
    print(f"saved {path}")


def print_timing(name: str, shift: dict[str, Any]) -> None:
    print(f"{name}:")
    for key in (
        "slowdown_to_first_shift_s",
        "ema_cross_to_first_shift_intervals",
        "recovery_to_restore_s",
        "clear_to_restore_s",
        "reversals",
        "min_weight_r0",
    ):
        print(f"  {key}: {shift[key]}")


if __name__ == "__main__":
    main()
