"""The tuning problems of the benchmark suite (and of ``tuneloop demo``).

Each problem is a fleet, a set of knobs (integer, real, categorical), an objective to minimise
and SLO constraints. ``evaluate(params, seed)`` builds the fleet for the parameters, runs
``WARMUP_S + MEASURE_S`` simulated seconds and measures the last ``MEASURE_S``. The seed fixes the
workload (common random numbers), so the same (params, seed) always gives the same answer and a
grid oracle can find the optimum of exactly the function the strategies see. Objectives that
trade latency against capacity add a price per GPU-hour (documented per problem), since more
replicas always lower latency and a tuner must be told what capacity is worth.

Knobs may carry the domain hints an experiment file gives (``bdp`` for TCP buffers, ``capacity``
for balancer weights: the replica's relative decode speed, what a capacity signal would show);
the tuner turns them into initial points, the other strategies ignore them. Balancer weights are
integers, as HAProxy and nginx take them. Grid levels are chosen so the oracle stays affordable
(about 2,000 points per problem at most); the benchmark takes as optimum the better of the grid's
best and the best feasible value any strategy found, so a coarse grid cannot inflate regret.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner.appliers.base import Value
from tuner.sim.fleet import FleetConfig, SimFleet
from tuner.sim.network import NetworkConfig
from tuner.sim.profiles import profile
from tuner.sim.workload import WorkloadConfig

WARMUP_S = 10.0
MEASURE_S = 30.0
KIB = 1024


@dataclass(frozen=True)
class Knob:
    """One search dimension: ``int``/``real`` with bounds (``log`` scale optional), or ``cat``."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()
    log: bool = False
    grid: tuple[Value, ...] = ()  # the oracle's levels
    bdp: tuple[float, float] | None = None  # (bits/s, RTT s): a TCP buffer's domain hint
    capacity: float | None = None  # a balancer weight's domain hint: the replica's capacity

    def levels(self) -> tuple[Value, ...]:
        """Values the grid oracle tries."""
        if self.grid:
            return self.grid
        if self.kind == "cat":
            return self.choices
        return tuple(int(v) for v in range(int(self.low), int(self.high) + 1))


Metrics = dict[str, float | None]
Builder = Callable[[Mapping[str, Value]], FleetConfig]
Scorer = Callable[[Mapping[str, Value], Metrics], tuple[float | None, bool]]


@dataclass(frozen=True)
class Problem:
    """A fleet to tune: knobs, how to build the fleet, objective and constraints."""

    name: str
    description: str
    knobs: tuple[Knob, ...]
    build: Builder
    score: Scorer
    initial: dict[str, Value] = field(default_factory=dict)

    def evaluate(
        self, params: Mapping[str, Value], seed: int = 0, measure_s: float = MEASURE_S
    ) -> tuple[float, bool, Metrics]:
        """(objective, feasible, metrics) over ``measure_s`` after the warm-up; an unmeasurable
        run is infeasible with +inf. A long ``measure_s`` approaches the configuration's true
        value; the default window is as noisy as a real trial's."""
        fleet = SimFleet(self.build(params), seed)
        fleet.run_until(WARMUP_S + measure_s)
        metrics = fleet.stats(WARMUP_S)
        metrics["cost_per_hour"] = _cost(fleet.config)
        value, feasible = self.score(params, metrics)
        if value is None or not math.isfinite(value):
            return math.inf, False, metrics
        return value, feasible, metrics

    def grid(self) -> list[dict[str, Value]]:
        """Every combination of the knobs' levels."""
        names = [k.name for k in self.knobs]
        return [dict(zip(names, combo, strict=True)) for combo in _product(self.knobs)]


def _product(knobs: tuple[Knob, ...]) -> itertools.product[tuple[Value, ...]]:
    return itertools.product(*(k.levels() for k in knobs))


def _cost(cfg: FleetConfig) -> float:
    names = cfg.profiles
    return sum(profile(names[i % len(names)]).cost_per_hour for i in range(cfg.replicas))


def _slo(metrics: Metrics, limits: Mapping[str, float]) -> bool:
    """True when every limited metric exists and is within its limit."""
    for name, limit in limits.items():
        value = metrics.get(name)
        if value is None or value > limit:
            return False
    return True


def _log_levels(low: float, high: float, n: int, integer: bool) -> tuple[Value, ...]:
    values = np.geomspace(low, high, n)
    if integer:
        return tuple(sorted({round(float(v)) for v in values}))
    return tuple(float(v) for v in values)


def _int(params: Mapping[str, Value], name: str) -> int:
    return int(params[name])


# 1. Batch limit and balancer on a small-memory fleet: too low a limit queues requests until they
# time out, slowly enough that a one-minute window can miss it (16 looks feasible in a window and
# is not in truth); above about 24 the KV cache, not the limit, bounds the batch.
BATCHING_ITL_S = 0.30


def _batching_build(p: Mapping[str, Value]) -> FleetConfig:
    return FleetConfig(
        profiles=("A100-40GB",),
        replicas=3,
        batch_limit=_int(p, "batch_limit"),
        balancer=str(p["balancer"]),
        workload=WorkloadConfig(rate=22.0, prompt_mean=900.0, output_mean=100.0),
    )


def _batching_score(p: Mapping[str, Value], m: Metrics) -> tuple[float | None, bool]:
    ok = _slo(m, {"p99_itl_seconds": BATCHING_ITL_S, "error_ratio": 0.01})
    return m["p99_e2e_latency_seconds"], ok


# 2. Balancer weights on a mixed H100 / A100 / L40S fleet (smooth WRR).
def _weights_build(p: Mapping[str, Value]) -> FleetConfig:
    return FleetConfig(
        profiles=("H100", "A100-80GB", "L40S"),
        replicas=3,
        batch_limit=256,
        balancer="wrr",
        weights=(float(p["w_h100"]), float(p["w_a100"]), float(p["w_l40s"])),
        workload=WorkloadConfig(rate=24.0, burst_factor=1.5, burst_s=5.0, burst_period_s=20.0),
    )


def _weights_score(p: Mapping[str, Value], m: Metrics) -> tuple[float | None, bool]:
    return m["p99_e2e_latency_seconds"], _slo(m, {"error_ratio": 0.01})


# 3. Capacity planning: GPU type, replicas, batch limit, balancer; price + latency under SLOs.
def _capacity_build(p: Mapping[str, Value]) -> FleetConfig:
    return FleetConfig(
        profiles=(str(p["gpu"]),),
        replicas=_int(p, "replicas"),
        batch_limit=_int(p, "batch_limit"),
        balancer=str(p["balancer"]),
        workload=WorkloadConfig(rate=16.0, burst_factor=2.0, burst_s=4.0, burst_period_s=15.0),
    )


def _capacity_score(p: Mapping[str, Value], m: Metrics) -> tuple[float | None, bool]:
    ok = _slo(m, {"p99_ttft_seconds": 2.0, "p99_itl_seconds": 0.12, "error_ratio": 0.01})
    ttft = m["p99_ttft_seconds"]
    cost = m["cost_per_hour"]
    return (None if ttft is None or cost is None else cost + 2.0 * ttft), ok


# 4. TCP window against the BDP for large multimodal uploads over a 1 Gb/s, 20 ms path.
def _network_build(p: Mapping[str, Value]) -> FleetConfig:
    return FleetConfig(
        profiles=("H100",),
        replicas=_int(p, "replicas"),
        batch_limit=256,
        balancer=str(p["balancer"]),
        workload=WorkloadConfig(rate=14.0, bytes_per_prompt_token=1500.0),
        network=NetworkConfig(
            link_bps=1e9, rtt_s=0.02, window_bytes=float(p["tcp_window"]), buffer_bytes=1024 * KIB
        ),
    )


def _network_score(p: Mapping[str, Value], m: Metrics) -> tuple[float | None, bool]:
    ttft = m["p99_ttft_seconds"]
    cost = m["cost_per_hour"]
    ok = _slo(m, {"error_ratio": 0.01})
    return (None if ttft is None or cost is None else ttft + 0.05 * cost), ok


# 5. Everything at once on a mixed fleet: 6 knobs, price + latency under SLOs.
def _full_build(p: Mapping[str, Value]) -> FleetConfig:
    n = _int(p, "replicas")
    w = float(p["w_h100"])
    return FleetConfig(
        profiles=("H100", str(p["second_gpu"])),
        replicas=n,
        batch_limit=_int(p, "batch_limit"),
        balancer=str(p["balancer"]),
        weights=tuple(w if i % 2 == 0 else 1.0 for i in range(n)),
        workload=WorkloadConfig(rate=18.0, bytes_per_prompt_token=600.0),
        network=NetworkConfig(
            link_bps=2e9, rtt_s=0.01, window_bytes=float(p["tcp_window"]), buffer_bytes=512 * KIB
        ),
    )


def _full_score(p: Mapping[str, Value], m: Metrics) -> tuple[float | None, bool]:
    ok = _slo(m, {"p99_ttft_seconds": 3.0, "error_ratio": 0.01})
    e2e = m["p99_e2e_latency_seconds"]
    cost = m["cost_per_hour"]
    return (None if e2e is None or cost is None else e2e + 0.5 * cost), ok


BAL = Knob("balancer", "cat", choices=("least_conn", "wrr"))
WEIGHT_LEVELS: tuple[Value, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16)
PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "batching",
            "batch limit and balancer on 3 x A100-40GB; min p99 e2e, p99 ITL <= 300 ms",
            (Knob("batch_limit", "int", 4, 512, log=True), BAL),
            _batching_build,
            _batching_score,
            {"batch_limit": 8, "balancer": "least_conn"},
        ),
        Problem(
            "weights",
            "integer WRR weights on H100 + A100 + L40S; min p99 e2e, errors <= 1%",
            tuple(
                Knob(n, "int", 1, 16, grid=WEIGHT_LEVELS, capacity=profile(gpu).speed)
                for n, gpu in (("w_h100", "H100"), ("w_a100", "A100-80GB"), ("w_l40s", "L40S"))
            ),
            _weights_build,
            _weights_score,
            {"w_h100": 8, "w_a100": 8, "w_l40s": 8},
        ),
        Problem(
            "capacity",
            "GPU type, replicas, batch limit, balancer; min $/h + 2 x p99 TTFT under SLOs",
            (
                Knob("gpu", "cat", choices=("H100", "A100-80GB", "L40S")),
                Knob("replicas", "int", 1, 6),
                Knob("batch_limit", "int", 16, 512, log=True, grid=_log_levels(16, 512, 11, True)),
                BAL,
            ),
            _capacity_build,
            _capacity_score,
            {"gpu": "A100-80GB", "replicas": 4, "batch_limit": 256, "balancer": "least_conn"},
        ),
        Problem(
            "network",
            "TCP window vs BDP (1 Gb/s, 20 ms) with multimodal uploads; min p99 TTFT + price",
            (
                Knob(
                    "tcp_window",
                    "real",
                    64 * KIB,
                    64 * 1024 * KIB,
                    log=True,
                    grid=_log_levels(64 * KIB, 64 * 1024 * KIB, 31, False),
                    bdp=(1e9, 0.02),
                ),
                Knob("replicas", "int", 1, 4),
                BAL,
            ),
            _network_build,
            _network_score,
            {"tcp_window": 256 * KIB, "replicas": 2, "balancer": "least_conn"},
        ),
        Problem(
            "full",
            "6 knobs on an H100 + second-GPU fleet; min p99 e2e + price, TTFT and error SLOs",
            (
                Knob("replicas", "int", 2, 6),
                Knob("batch_limit", "int", 16, 512, log=True, grid=_log_levels(16, 512, 5, True)),
                Knob(
                    "tcp_window",
                    "real",
                    64 * KIB,
                    32 * 1024 * KIB,
                    log=True,
                    grid=_log_levels(64 * KIB, 32 * 1024 * KIB, 5, False),
                    bdp=(2e9, 0.01),
                ),
                Knob("w_h100", "real", 0.5, 4.0, log=True, grid=_log_levels(0.5, 4.0, 4, False)),
                BAL,
                Knob("second_gpu", "cat", choices=("A100-80GB", "A100-40GB", "L40S")),
            ),
            _full_build,
            _full_score,
            {
                "replicas": 4,
                "batch_limit": 256,
                "tcp_window": 256 * KIB,
                "w_h100": 1.0,
                "balancer": "least_conn",
                "second_gpu": "A100-80GB",
            },
        ),
    )
}


def get_problem(name: str) -> Problem:
    """The problem called ``name``; the error lists the known ones."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r} (known: {', '.join(PROBLEMS)})") from None


def describe(params: Mapping[str, Any]) -> str:
    """A compact one-line rendering of parameters."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )
