"""The sim behind the tuner's seams: applier, signals, clock; and the problem suite."""

from __future__ import annotations

import pytest

from tuner.appliers.base import ApplierError, VerifyError
from tuner.signals.base import SignalError, SignalRef
from tuner.sim.fleet import FleetConfig, SimFleet
from tuner.sim.problems import PROBLEMS, get_problem
from tuner.sim.seams import SimApplier, SimClock, SimSignals
from tuner.sim.workload import WorkloadConfig


@pytest.fixture
def fleet() -> SimFleet:
    return SimFleet(FleetConfig(replicas=2, workload=WorkloadConfig(rate=10.0)), seed=3)


def test_applier_reads_applies_and_rolls_back(fleet: SimFleet) -> None:
    app = SimApplier(fleet)
    assert app.kind == "sim"
    targets = ["replicas", "batch_limit", "tcp_window", "weight:r0", "weight:r1"]
    snap = app.snapshot(targets)
    assert snap == {
        "replicas": 2,
        "batch_limit": 256,
        "tcp_window": 4 * 1024 * 1024,
        "weight:r0": 1.0,
        "weight:r1": 1.0,
    }
    desired = {"replicas": 3, "weight:r2": 2.5, "batch_limit": 64, "tcp_window": 65536}
    app.apply(desired)
    app.verify(desired)
    assert fleet.active == 3 and fleet.batch_limit == 64
    app.apply(desired)  # idempotent
    app.rollback(snap)
    assert app.read(targets) == snap
    with pytest.raises(VerifyError, match="batch_limit"):
        app.verify({"batch_limit": 8})


def test_applier_errors_name_the_target(fleet: SimFleet) -> None:
    app = SimApplier(fleet)
    with pytest.raises(ApplierError, match="unknown target 'gpu_clock'"):
        app.read(["gpu_clock"])
    with pytest.raises(ApplierError, match="weight:r7"):
        app.apply({"weight:r7": 1.0})
    with pytest.raises(ApplierError, match=r"'replicas'.*whole number"):
        app.apply({"replicas": 2.5})
    with pytest.raises(ApplierError, match="'batch_limit'"):
        app.apply({"batch_limit": 0})
    with pytest.raises(ApplierError, match=r"weight:r1.*at least one weight"):
        app.apply({"weight:r0": 0.0, "weight:r1": 0.0})


def test_clock_sleep_advances_and_signals_follow(fleet: SimFleet) -> None:
    clock, signals = SimClock(fleet, epoch=1000.0), SimSignals(fleet)
    assert clock.now() == 1000.0
    assert signals.value(SignalRef(signal="p99_ttft_seconds"), 30) is None  # no traffic yet
    clock.sleep(40)
    assert clock.now() == 1040.0 and fleet.now == 40.0
    rate = signals.value(SignalRef(signal="request_rate"), 30)
    assert rate is not None and rate == pytest.approx(10.0, rel=0.25)
    p99 = signals.value(SignalRef(signal="p99_e2e_latency_seconds"), 30)
    p50 = signals.value(SignalRef(signal="p50_e2e_latency_seconds"), 30)
    assert p99 is not None and p50 is not None and p99 >= p50 > 0


def test_signals_reject_promql_and_unknown_names(fleet: SimFleet) -> None:
    signals = SimSignals(fleet)
    with pytest.raises(SignalError, match="no Prometheus"):
        signals.value(SignalRef(query="rate(x[$window])"), 30)
    with pytest.raises(SignalError, match="unknown signal 'p42'"):
        signals.value(SignalRef(signal="p42"), 30)


def test_scaling_up_through_the_applier_lowers_latency() -> None:
    def p99_after(replicas: int) -> float:
        fleet = SimFleet(FleetConfig(replicas=1, workload=WorkloadConfig(rate=16.0)), seed=5)
        SimApplier(fleet).apply({"replicas": replicas})
        SimClock(fleet).sleep(40)
        value = SimSignals(fleet).value(SignalRef(signal="p99_e2e_latency_seconds"), 30)
        assert value is not None
        return value

    assert p99_after(3) < p99_after(1)


def test_problems_are_deterministic_and_cover_the_knob_kinds() -> None:
    kinds = set()
    for problem in PROBLEMS.values():
        assert 2 <= len(problem.knobs) <= 6
        kinds |= {k.kind for k in problem.knobs}
        assert set(problem.initial) == {k.name for k in problem.knobs}
    assert kinds == {"int", "real", "cat"}
    assert len(PROBLEMS) >= 5
    prob = get_problem("network")
    a = prob.evaluate(prob.initial, 3)
    assert a[:2] == prob.evaluate(prob.initial, 3)[:2]
    tiny = dict(prob.initial, tcp_window=64 * 1024)
    slow, base = prob.evaluate(tiny, 3)[2]["p99_ttft_seconds"], a[2]["p99_ttft_seconds"]
    assert slow is not None and base is not None and slow > base
    with pytest.raises(ValueError, match="unknown problem"):
        get_problem("nope")


def test_the_batching_problem_times_out_below_a_batch_limit_and_is_feasible_above() -> None:
    prob = get_problem("batching")
    low = prob.evaluate({"batch_limit": 8, "balancer": "least_conn"}, 1, 600.0)
    high = prob.evaluate({"batch_limit": 32, "balancer": "least_conn"}, 1, 600.0)
    errors = low[2]["error_ratio"]
    assert not low[1] and errors is not None and errors > 0.01
    assert high[1] and high[0] < low[0]
