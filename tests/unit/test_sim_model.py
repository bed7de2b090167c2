"""Invariants of the simulated fleet: queueing laws, capacity, batching, KV, network, balancer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tuner.sim.balancer import Balancer
from tuner.sim.fleet import FleetConfig, SimFleet
from tuner.sim.network import NetworkConfig
from tuner.sim.replica import DONE, ERROR
from tuner.sim.workload import WorkloadConfig


def run(cfg: FleetConfig, seed: int = 1, until: float = 60.0) -> SimFleet:
    fleet = SimFleet(cfg, seed)
    fleet.run_until(until)
    return fleet


def test_same_seed_same_results_and_chunked_runs_match() -> None:
    cfg = FleetConfig(replicas=3, workload=WorkloadConfig(rate=25.0, burst_factor=2, burst_s=5))
    one = run(cfg, 4)
    two = SimFleet(cfg, 4)
    for t in (7.5, 21.0, 33.3, 60.0):
        two.run_until(t)
    assert one.stats(10) == two.stats(10)
    assert one.deliver_t == two.deliver_t
    assert run(cfg, 5).stats(10) != one.stats(10)


def test_littles_law() -> None:
    cfg = FleetConfig(replicas=1, workload=WorkloadConfig(rate=6.0))
    fleet = run(cfg, 2, until=400.0)
    s = fleet.stats(50.0, 400.0)
    lam, mean_w, mean_l = s["request_rate"], s["mean_e2e_latency_seconds"], s["mean_in_system"]
    assert lam and mean_w and mean_l
    assert mean_l == pytest.approx(lam * mean_w, rel=0.08)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_more_capacity_never_raises_p99(seed: int) -> None:
    base = FleetConfig(replicas=2, workload=WorkloadConfig(rate=18.0))
    bigger = [replace(base, replicas=3), replace(base, profiles=("H100",))]
    ref = run(base, seed).stats(10)
    for cfg in bigger:
        s = run(cfg, seed).stats(10)
        for key in ("p99_e2e_latency_seconds", "p99_ttft_seconds"):
            assert s[key] <= ref[key]  # type: ignore[operator]


def test_throughput_rises_and_saturates_while_itl_grows() -> None:
    tput, itl = [], []
    for limit in (1, 4, 16, 64, 256):
        cfg = FleetConfig(replicas=1, batch_limit=limit, workload=WorkloadConfig(rate=40.0))
        s = run(cfg, 3, until=40.0).stats(10)
        throughput, mean_itl = s["throughput_tokens_per_second"], s["mean_itl_seconds"]
        assert throughput is not None and mean_itl is not None
        tput.append(throughput)
        itl.append(mean_itl)
    assert tput == sorted(tput)
    assert itl == sorted(itl)
    assert tput[1] / tput[0] > 2.5  # nearly linear at small batches
    assert tput[4] / tput[3] < 1.6  # saturating at large ones


def test_batch_limit_over_kv_capacity_preempts() -> None:
    wl = WorkloadConfig(rate=30.0, prompt_mean=1500, output_mean=600)
    small = FleetConfig(profiles=("A100-40GB",), replicas=1, batch_limit=32, workload=wl)
    large = replace(small, batch_limit=512)
    assert run(small, 1, 40).stats(0)["preemptions"] == 0
    assert run(large, 1, 40).stats(0)["preemptions"] > 0  # type: ignore[operator]


def test_window_below_bdp_lowers_throughput_proportionally() -> None:
    net = NetworkConfig(link_bps=1e9, rtt_s=0.02, buffer_bytes=1 << 20)
    bdp = net.bdp_bytes
    assert bdp == pytest.approx(2.5e6)
    assert net.throughput_bps(bdp) == pytest.approx(1e9)
    for frac in (0.5, 0.25, 0.1):
        assert net.throughput_bps(bdp * frac) == pytest.approx(1e9 * frac)
    assert net.throughput_bps(bdp + (1 << 20)) == pytest.approx(1e9)
    assert net.throughput_bps(4 * (bdp + (1 << 20))) == pytest.approx(0.25e9)
    full, small = replace(net, window_bytes=bdp), replace(net, window_bytes=bdp / 4)
    assert small.transfer_seconds(1e6) - 0.01 == pytest.approx(
        4 * (full.transfer_seconds(1e6) - 0.01)
    )


def test_smooth_wrr_interleaves_in_proportion() -> None:
    bal = Balancer("wrr", [5, 1, 1])
    seq = [bal.pick([0, 0, 0]) for _ in range(7)]
    assert seq == [0, 0, 1, 0, 2, 0, 0]  # nginx's documented order for 5:1:1
    counts = [0, 0, 0]
    for _ in range(700):
        counts[bal.pick([0, 0, 0])] += 1
    assert counts == [500, 100, 100]


def test_fleet_routes_in_proportion_to_weights() -> None:
    cfg = FleetConfig(
        replicas=3, balancer="wrr", weights=(3, 2, 1), workload=WorkloadConfig(rate=12)
    )
    fleet = run(cfg, 1, 30)
    counts = [fleet.table.replica.count(i) for i in range(3)]
    total = sum(counts)
    assert [c / total for c in counts] == pytest.approx([0.5, 1 / 3, 1 / 6], abs=0.01)


def test_least_connections_picks_lowest_load_per_weight() -> None:
    bal = Balancer("least_conn", [1, 1, 2])
    assert bal.pick([3, 1, 4]) == 1
    assert bal.pick([3, 2, 2]) == 2  # 2/2 = 1 beats 2/1
    with pytest.raises(ValueError, match="balancer"):
        Balancer("random", [1])


def test_every_request_accounted_for() -> None:
    cfg = FleetConfig(
        replicas=1, batch_limit=8, queue_timeout_s=2.0, workload=WorkloadConfig(rate=20.0)
    )
    fleet = SimFleet(cfg, 9)
    for t in (5.0, 13.0, 30.0):
        fleet.run_until(t)
        status = fleet.table.status
        done = sum(1 for i, s in enumerate(status) if s == DONE and fleet.deliver_t[i] <= t)
        err = status.count(ERROR)
        assert err > 0
        assert done + err + fleet.in_flight() == len(fleet.send_t)
    fleet.drain()
    assert fleet.in_flight() == 0


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"workload\.rate"):
        FleetConfig.from_mapping({"workload": {"rate": "fast"}})
    with pytest.raises(ValueError, match=r"profiles\[0\].*unknown GPU profile 'V100'"):
        FleetConfig.from_mapping({"profiles": ["V100"]})
    with pytest.raises(ValueError, match="replicas"):
        FleetConfig.from_mapping({"replicas": 0})
    with pytest.raises(ValueError, match=r"network\.window"):
        FleetConfig.from_mapping({"network": {"window": 1}})
    cfg = FleetConfig.from_mapping({"replicas": 3, "profiles": "H100", "balancer": "wrr"})
    assert cfg.replicas == 3 and cfg.profiles == ("H100",)
