"""``tuneloop demo``: tune a heterogeneous simulated fleet end to end, on any machine, in minutes.

The fleet cycles H100, A100-80GB and L40S replicas (six replicas are two of each) behind a
weighted round-robin balancer, serving a bursty chat workload. It starts mis-set the way fleets
often are: equal weights for unequal GPUs, a batch limit of 512, and four replicas. The
experiment (YAML, validated by :mod:`tuner.spec`) tunes one weight per GPU type, the batch limit
and the replica count to minimise P99 end-to-end latency under a P99 TTFT SLO and an error
budget; the weights carry each GPU type's capacity as a domain hint, so the default strategy
starts from the current configuration and then capacity-proportional weights.

The real :class:`~tuner.loop.TuningLoop` runs it through the simulated fleet's seams (applier,
signals, clock) built by :func:`demo_factories`, with its trial store and audit log under
``--out``; simulated time makes each trial take milliseconds. Before and after are measured on
fresh fleets with the same workload seed (common random numbers), so the table compares
configurations, not luck. Balancer weights are set per GPU type (``pool_weight:<profile>``), as
a balancer with one backend per Deployment would: a pool's weight also covers replicas scaled in
later, which per-replica targets cannot express while the replica count changes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.appliers.base import ApplierError, Value
from tuner.loop import LoopResult
from tuner.progress import Progress
from tuner.report import write_report
from tuner.sim.fleet import FleetConfig, SimFleet
from tuner.sim.profiles import profile
from tuner.sim.seams import SimApplier, SimClock, SimSignals
from tuner.sim.workload import WorkloadConfig
from tuner.spec import Experiment, loads_experiment
from tuner.store import Trial
from tuner.trial_state import TrialState
from tuner.wiring import Factories, build_loop

log = logging.getLogger(__name__)

NAME = "demo-fleet"
PROFILES = ("H100", "A100-80GB", "L40S")
POOL = "pool_weight:"
TTFT_SLO_S = 1.0
PREWARM_S = 60.0  # simulated seconds of traffic before anything is measured (steady state)
TABLE_WINDOW_S = 120.0  # the before/after window
START: dict[str, Value] = {
    "w_h100": 8,
    "w_a100": 8,
    "w_l40s": 8,
    "batch_limit": 512,
    "replicas": 4,
}
WORKLOAD = WorkloadConfig(rate=20.0, burst_factor=1.5, burst_s=5.0, burst_period_s=20.0)

EXPERIMENT = """\
name: {name}
mode: apply
appliers:
  fleet: {{kind: sim}}
knobs:
  - {{name: w_h100, type: int, applier: fleet, target: "pool_weight:H100", class: hot,
     bounds: [1, 16], init: {{capacity: {cap_h100}}}}}
  - {{name: w_a100, type: int, applier: fleet, target: "pool_weight:A100-80GB", class: hot,
     bounds: [1, 16], init: {{capacity: {cap_a100}}}}}
  - {{name: w_l40s, type: int, applier: fleet, target: "pool_weight:L40S", class: hot,
     bounds: [1, 16], init: {{capacity: {cap_l40s}}}}}
  - {{name: batch_limit, type: int, applier: fleet, target: batch_limit, class: cold,
     bounds: [16, 512], log: true}}
  - {{name: replicas, type: int, applier: fleet, target: replicas, class: warm, bounds: [3, 6]}}
objective: {{signal: p99_e2e_latency_seconds, direction: minimize}}
constraints:
  - {{name: p99_ttft, signal: p99_ttft_seconds, max: {slo}}}
  - {{name: errors, signal: error_ratio, max: 0.01}}
measurement:
  warmup: {{hot: 15s, warm: 30s, cold: 30s}}
  window: {window}s
  check_interval: 10s
  min_request_rate: 1
budget: {{trials: {trials}}}
safety: {{max_relative_step: 1.0, cooldown: 60s}}
strategy: {{name: skopt-gp, seed: {seed}, initial_points: 5}}
"""


class PoolSimApplier(SimApplier):
    """The sim applier plus ``pool_weight:<profile>``: one weight for all replicas of a GPU type."""

    def _pool(self, target: str) -> list[int]:
        name = target[len(POOL) :]
        profile(name)  # unknown profiles raise ValueError naming the known ones
        return [i for i, rep in enumerate(self.fleet.replicas) if rep.gpu.name == name]

    def read(self, targets: list[str]) -> dict[str, Value]:
        out: dict[str, Value] = {}
        rest = [t for t in targets if not t.startswith(POOL)]
        for target in targets:
            if target.startswith(POOL):
                members = self._checked_pool(target)
                out[target] = self.fleet.weights[members[0]] if members else 1.0
        out.update(super().read(rest))
        return {t: out[t] for t in targets}

    def _checked_pool(self, target: str) -> list[int]:
        try:
            return self._pool(target)
        except ValueError as exc:
            raise ApplierError(f"sim: target {target!r}: {exc}") from None

    def apply(self, desired: Mapping[str, Value]) -> None:
        super().apply({t: v for t, v in desired.items() if not t.startswith(POOL)})
        pools = {t: v for t, v in desired.items() if t.startswith(POOL)}
        if not pools:
            return
        fleet = self.fleet
        weights = list(fleet.weights)
        for target, value in pools.items():
            if isinstance(value, str) or float(value) <= 0:
                raise ApplierError(f"sim: target {target!r} needs a positive weight, got {value!r}")
            for i in self._checked_pool(target):
                weights[i] = float(value)
        fleet.weights = weights
        fleet.balancer.set_weights(weights[: fleet.active])


def demo_fleet(seed: int) -> SimFleet:
    """The mis-set fleet the demo starts from."""
    n = int(START["replicas"])
    by_gpu = {"H100": START["w_h100"], "A100-80GB": START["w_a100"], "L40S": START["w_l40s"]}
    config = FleetConfig(
        profiles=PROFILES,
        replicas=n,
        batch_limit=int(START["batch_limit"]),
        balancer="wrr",
        weights=tuple(float(by_gpu[PROFILES[i % len(PROFILES)]]) for i in range(n)),
        workload=WORKLOAD,
    )
    return SimFleet(config, seed)


def demo_experiment(trials: int, seed: int, window_s: float) -> Experiment:
    """The demo's experiment, parsed and validated like any experiment file."""
    text = EXPERIMENT.format(
        name=NAME,
        cap_h100=profile("H100").speed,
        cap_a100=profile("A100-80GB").speed,
        cap_l40s=profile("L40S").speed,
        slo=TTFT_SLO_S,
        window=int(window_s),
        trials=trials,
        seed=seed,
    )
    return loads_experiment(text, "demo experiment")


def demo_factories(fleet: SimFleet, epoch: float) -> Factories:
    """Appliers, signals and clock bound to one simulated fleet."""
    clock = SimClock(fleet, epoch)
    return Factories(
        appliers=lambda exp: {name: PoolSimApplier(fleet) for name in exp.appliers},
        signals=lambda exp: SimSignals(fleet),
        clock=lambda: clock,
        kube_events=None,
    )


@dataclass(frozen=True)
class Snapshot:
    """A configuration measured on a fresh fleet."""

    params: dict[str, Value]
    stats: dict[str, float | None]
    cost_per_hour: float


def measure(exp: Experiment, params: Mapping[str, Value], seed: int) -> Snapshot:
    """Apply ``params`` to a fresh demo fleet, warm up, and measure one window."""
    fleet = demo_fleet(seed)
    applier = PoolSimApplier(fleet)
    applier.apply({k.target: params[k.name] for k in exp.knobs})
    warm = PREWARM_S
    fleet.run_until(warm + TABLE_WINDOW_S)
    cost = sum(fleet.replicas[i].gpu.cost_per_hour for i in range(fleet.active))
    return Snapshot(dict(params), fleet.stats(warm), cost)


ROWS = (
    ("P50 TTFT (s)", "p50_ttft_seconds"),
    ("P99 TTFT (s)", "p99_ttft_seconds"),
    ("P99 end-to-end (s)", "p99_e2e_latency_seconds"),
    ("P99 queue time (s)", "p99_queue_seconds"),
    ("P99 prefill time (s)", "p99_prefill_seconds"),
    ("P50 decode time (s)", "p50_decode_seconds"),
    ("throughput (tokens/s)", "throughput_tokens_per_second"),
    ("errors (ratio)", "error_ratio"),
    ("GPU busy (ratio)", "gpu_busy_ratio"),
)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(before: Snapshot, after: Snapshot) -> list[tuple[str, str, str]]:
    """(row, before, after) for the before/after table."""
    rows = [(label, _num(before.stats[key]), _num(after.stats[key])) for label, key in ROWS]
    rows.append(("replicas", str(before.params["replicas"]), str(after.params["replicas"])))
    rows.append(("cost ($/h)", f"{before.cost_per_hour:.1f}", f"{after.cost_per_hour:.1f}"))
    for name in ("w_h100", "w_a100", "w_l40s", "batch_limit"):
        rows.append((name, str(before.params[name]), str(after.params[name])))
    return rows


def render_text(rows: Sequence[tuple[str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':<{width}}  {'before':>10}  {'after':>10}"]
    lines += [f"{label:<{width}}  {b:>10}  {a:>10}" for label, b, a in rows]
    return "\n".join(lines)


def render_markdown(rows: Sequence[tuple[str, str, str]], slo: float) -> str:
    lines = [
        "## Before and after",
        "",
        f"Both measured on fresh fleets with the same workload; SLO: P99 TTFT <= {slo:g} s, "
        "errors <= 1%.",
        "",
        "| | before | after |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {b} | {a} |" for label, b, a in rows]
    return "\n".join(lines) + "\n"


def best_observed(trials: Sequence[Trial]) -> Trial | None:
    """The measured feasible trial with the lowest objective in a single window."""
    measured = [
        t for t in trials if t.state == TrialState.DONE and t.feasible and t.objective is not None
    ]
    return min(measured, key=lambda t: t.objective or 0.0, default=None)


def applied_line(result: LoopResult, observed: Trial | None) -> str:
    """What stays applied, its re-measured objective, and the best single window beside it."""
    if not result.applied_best or result.best_value is None:
        return f"\nnothing new applied ({result.stopped}); the starting configuration stays"
    line = f"\napplied: objective {result.best_value:.3f} s re-measured after the final apply"
    if observed is not None and observed.objective is not None:
        line += (
            f" (best single window observed: {observed.objective:.3f} s, trial {observed.number})"
        )
    return line


def _fresh_state(state: Path) -> None:
    """Remove what a previous demo left in its own state directory (its store and audit log)."""
    for name in ("trials.db", "trials.db-wal", "trials.db-shm", "audit.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            (state / name).unlink()


def run_demo(out: Path, trials: int, seed: int, quick: bool) -> tuple[Snapshot, Snapshot, Path]:
    """Tune the demo fleet; returns before, after and the report's Markdown file."""
    window = 20.0 if quick else 30.0
    exp = demo_experiment(trials, seed, window)
    state = out / "state"
    _fresh_state(state)
    fleet = demo_fleet(seed)
    fleet.run_until(PREWARM_S)
    factories = demo_factories(fleet, epoch=time.time())
    print(
        f"tuning {NAME}: {fleet.active} replicas of {' / '.join(PROFILES)} (cycled), "
        f"{trials} trials; minimise P99 end-to-end latency, SLO P99 TTFT <= {TTFT_SLO_S:g} s",
        flush=True,
    )
    print(
        "  each line: trial n/budget #row, knobs | objective (P99 e2e, s) and SLO signals "
        "| outcome | best so far; [incumbent] re-measures the best before a new one is promoted",
        flush=True,
    )
    loop = build_loop(exp, factories, state, progress=Progress(prefix="  "))
    try:
        result: LoopResult = loop.run(max_trials=trials, apply=True)
        observed = best_observed(loop.store.trials(NAME))
        paths = write_report(loop.store, out, NAME)
    finally:
        loop.store.close()
    print(applied_line(result, observed), flush=True)
    best = dict(result.recommendation or START)
    log.info("demo tuned: %s", result.stopped, extra={"experiment": NAME})
    before = measure(exp, START, seed)
    after = measure(exp, best, seed)
    rows = table(before, after)
    print("\n" + render_text(rows), flush=True)
    md = paths[0]
    with md.open("a", encoding="utf-8") as fh:
        fh.write("\n" + render_markdown(rows, TTFT_SLO_S))
    print(f"\nreport: {md}\nconvergence plot: {paths[1]}", flush=True)
    return before, after, md


def cmd_demo(args: argparse.Namespace, factories: Factories | None = None) -> int:
    """Run the demo; ``factories`` is ignored (the demo builds its own simulated fleet)."""
    trials = args.trials if args.trials is not None else (12 if args.quick else 30)
    if trials < 1:
        print("error: --trials: must be at least 1", file=sys.stderr)
        return 2
    run_demo(Path(args.out), trials, args.seed, args.quick)
    return 0


def add_demo_command(sub: Any) -> None:
    """Register ``demo`` under a parent's subparsers."""
    p = sub.add_parser("demo", help="tune a simulated heterogeneous fleet and write a report")
    p.add_argument("--out", default="./tuneloop-demo", help="report and state directory")
    p.add_argument("--trials", type=int, default=None, help="trial budget (default 30, quick 12)")
    p.add_argument("--seed", type=int, default=0, help="workload and strategy seed")
    p.add_argument("--quick", action="store_true", help="fewer trials, shorter windows")
    p.set_defaults(func=cmd_demo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuneloop demo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_demo_command(sub)
    args = parser.parse_args(["demo", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
