"""P99 end-to-end latency on the local lab: round robin, leastconn, the tuner, and a grid oracle.

The lab's heterogeneous fleet (H100, A100-80GB, L40S profiles, batch limit 2) behind a real
HAProxy, a fixed open-loop offered load (``--rate``, about 70% of the fleet's measured capacity
by default), and client-side P99 from the load generator's raw samples (exact, not bucketed).
Each configuration is measured the same way: set the weights, warm up, then one loadgen run of
``--seconds``. Rows:

- equal-weight round robin (the default users start from);
- leastconn (HAProxy's other backend over the same replicas);
- the tuner's weights after ``--trials`` trials of ``tuneloop tune`` (examples/lab-haproxy-weights);
- the grid oracle: the best of a grid of weights over the same bounds.

Ratios are to round robin and to the oracle, measured in the same run.
Run: ``.venv/bin/python -m bench.lab_weights [--rate 23] [--seconds 20] [--trials 20]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import save, table
from lab.lab import Lab, LabConfig, running_lab
from tuner.appliers.haproxy import HaproxyApplier
from tuner.store import TrialStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TARGETS = ("llm/r0", "llm/r1", "llm/r2")
LOADGEN_TIMEOUT_S = 5


def measure(
    lab: Lab, port: str, seconds: float, rate: float, seed: int, tmp: Path
) -> dict[str, Any]:
    """One bounded loadgen run against a balancer port; its exact summary."""
    summary = tmp / f"summary-{time.monotonic_ns()}.json"
    args = [
        "--target",
        f"127.0.0.1:{lab.port(port)}",
        "--rate",
        str(rate),
        "--duration",
        str(seconds),
        "--max-requests",
        str(int(rate * seconds * 2)),
        "--timeout",
        str(LOADGEN_TIMEOUT_S),
        "--seed",
        str(seed),
        "--summary",
        str(summary),
    ]
    run = lab.start_load(args, name="bench-load")
    run.proc.wait(timeout=seconds + 30)
    lab.stop("bench-load")
    return dict(json.loads(summary.read_text()))


def at_weights(
    lab: Lab, weights: tuple[int, ...], args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    HaproxyApplier(f"127.0.0.1:{lab.port('haproxy_admin')}").apply(
        dict(zip(TARGETS, weights, strict=True))
    )
    time.sleep(args.warmup)
    return measure(lab, "haproxy", args.seconds, args.rate, args.seed, tmp)


def tuner_weights(
    lab: Lab, args: argparse.Namespace, tmp: Path
) -> tuple[tuple[int, ...], int, float]:
    """Run ``tuneloop tune`` under background load; the applied best, trials used, wall time."""
    exp = lab.render_experiment(EXAMPLES / "lab-haproxy-weights.yaml", tmp / "exp.yaml")
    data = yaml.safe_load(exp.read_text())
    # Warm up past the load generator's request timeout, so requests sent under the previous
    # trial's weights have finished (or timed out) before this trial's window starts counting.
    data["measurement"].update(
        warmup={"hot": f"{LOADGEN_TIMEOUT_S + 1:g}s"},
        window=f"{args.window}s",
        check_interval=f"{args.window}s",
    )
    exp.write_text(yaml.safe_dump(data, sort_keys=False))
    HaproxyApplier(f"127.0.0.1:{lab.port('haproxy_admin')}").apply(dict.fromkeys(TARGETS, 16))
    budget_s = args.trials * (args.window + 3) * 2 + 60
    lab.start_load(
        [
            "--target",
            f"127.0.0.1:{lab.port('haproxy')}",
            "--rate",
            str(args.rate),
            "--duration",
            str(budget_s),
            "--max-requests",
            str(int(args.rate * budget_s)),
            "--timeout",
            str(LOADGEN_TIMEOUT_S),
            "--seed",
            str(args.seed + 1),
        ]
    )
    started = time.monotonic()
    cmd = [
        sys.executable,
        "-m",
        "tuner.cli",
        "tune",
        str(exp),
        "--state",
        str(tmp / "state"),
        "--apply",
        "--trials",
        str(args.trials),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=budget_s, check=False)
    elapsed = time.monotonic() - started
    lab.stop("loadgen")
    print(out.stdout, end="")  # the tuner's own trial lines, for the record
    if out.returncode != 0:
        raise RuntimeError(f"tuneloop tune failed: {out.stdout}{out.stderr}")
    weights = HaproxyApplier(f"127.0.0.1:{lab.port('haproxy_admin')}").read(list(TARGETS))
    store = TrialStore(tmp / "state" / "trials.db")
    try:
        used = len([t for t in store.trials("lab-haproxy-weights") if t.kind == "trial"])
    finally:
        store.close()
    return tuple(int(weights[t]) for t in TARGETS), used, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=23.0, help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="loadgen run per row")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=8.0, help="the tuner's window")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--grid", default="1,4,16,64", help="weight levels for r1 and r2 (r0=64)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    levels = [int(x) for x in args.grid.split(",")]
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        running_lab(
            LabConfig(Path(tmpdir) / "lab", batch_limit=2, agent=False, die_with_parent=True)
        ) as lab,
    ):
        tmp = Path(tmpdir)
        rr = at_weights(lab, (16, 16, 16), args, tmp)
        lc = measure(lab, "haproxy_leastconn", args.seconds, args.rate, args.seed, tmp)
        tuned_w, used, tune_s = tuner_weights(lab, args, tmp)
        tuned = at_weights(lab, tuned_w, args, tmp)
        grid = []
        for w1, w2 in itertools.product(levels, levels):
            weights = (64, w1, w2)
            grid.append((weights, at_weights(lab, weights, args, tmp)))
        oracle_w, oracle = min(grid, key=lambda g: g[1]["e2e_p99_s"])
    rows = [
        ("round robin (16,16,16)", rr),
        ("leastconn", lc),
        (f"tuner {tuned_w} ({used} trials)", tuned),
        (f"grid oracle {oracle_w} (of {len(grid)})", oracle),
    ]
    base, best = rr["e2e_p99_s"], oracle["e2e_p99_s"]
    printable = [
        [
            name,
            r["e2e_p99_s"],
            r["e2e_p50_s"],
            r["error_ratio"],
            r["e2e_p99_s"] / base,
            r["e2e_p99_s"] / best,
        ]
        for name, r in rows
    ]
    print(f"offered load {args.rate:g} req/s, {args.seconds:g} s per row, P99 e2e seconds")
    print(table(["config", "p99 s", "p50 s", "errors", "vs rr", "vs oracle"], printable))
    path = save(
        "lab_weights",
        {
            "rate": args.rate,
            "seconds": args.seconds,
            "trials_budget": args.trials,
            "trials_used": used,
            "tune_wall_s": tune_s,
            "rows": [{"config": n, **r} for n, r in rows],
            "grid": [{"weights": list(w), **r} for w, r in grid],
            "tuner_vs_oracle": tuned["e2e_p99_s"] / best,
            "tuner_vs_round_robin": tuned["e2e_p99_s"] / base,
            "tuner_vs_leastconn": tuned["e2e_p99_s"] / lc["e2e_p99_s"],
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
