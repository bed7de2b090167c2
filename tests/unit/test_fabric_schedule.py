"""Round-robin fabric schedule properties and the slot runner's timing."""

import itertools
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.bench.fabric import (
    FabricRunner,
    FabricSchedule,
    SlotOutcome,
    make_schedule,
    round_robin,
)
from agent.bench.iperf3 import Iperf3Result, Iperf3UnreachableError


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=2, max_value=40))
def test_round_robin_properties(n):
    hosts = [f"node-{i}" for i in range(n)]
    rounds = round_robin(hosts)
    assert len(rounds) == (n - 1 if n % 2 == 0 else n)
    pairs = [frozenset(p) for r in rounds for p in r]
    assert len(pairs) == len(set(pairs)) == n * (n - 1) // 2  # every pair exactly once
    for r in rounds:
        in_round = [h for p in r for h in p]
        assert len(in_round) == len(set(in_round))  # no host twice in a round
        assert len(r) == n // 2


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=2, max_value=12))
def test_slots_cover_both_directions_and_servers_serve_one_at_a_time(n):
    hosts = [f"10.0.0.{i + 1}" for i in range(n)]
    sched = make_schedule(hosts, start_at=0.0, duration_s=2, jitter_s=1)
    slots = sched.slots()
    directed = {(s.client, s.server) for s in slots}
    assert directed == set(itertools.permutations(hosts, 2))
    for _, group in itertools.groupby(sorted(slots, key=lambda s: s.index), key=lambda s: s.index):
        busy = [h for s in group for h in (s.client, s.server)]
        assert len(busy) == len(set(busy))


def test_duplicate_hosts_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        round_robin(["a", "b", "a"])
    with pytest.raises(ValueError, match="at least two"):
        make_schedule(["a"], start_at=0)


def test_schedule_file_round_trip_and_errors(tmp_path):
    sched = make_schedule(["a", "b:5302", "c"], start_at=100.0, duration_s=3, period_s=3600)
    path = tmp_path / "schedule.json"
    sched.dump(path)
    assert FabricSchedule.load(path) == sched
    data = json.loads(path.read_text())
    data["rounds"][0] = [["a", "c"], ["c", "b:5302"]]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"schedule.json: rounds\[0\] has host 'c' twice"):
        FabricSchedule.load(path)
    del data["slot_s"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="missing field 'slot_s'"):
        FabricSchedule.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read schedule"):
        FabricSchedule.load(path)
    with pytest.raises(ValueError, match="slot_s"):
        make_schedule(["a", "b"], start_at=0, duration_s=10, slot_s=5)
    with pytest.raises(ValueError, match="period_s"):
        make_schedule(["a", "b"], start_at=0, duration_s=1, slot_s=10, period_s=5)


class FakeTime:
    """A clock whose sleep advances time; the runner's time boundary."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        assert s >= 0
        self.t += s


def fake_result(host, port, **kw):
    return Iperf3Result(
        host, port, 1e9, 0, 1e-4, 0.5, 0.4, kw["duration_s"], kw["streams"], kw["window_bytes"], 0.0
    )


def test_runner_starts_each_slot_at_its_time_plus_bounded_jitter():
    hosts = ["a", "b", "c", "d"]
    sched = make_schedule(hosts, start_at=1000.0, duration_s=2, jitter_s=3, slot_s=10)
    clock = FakeTime(900.0)
    calls = []

    def run(host, port, **kw):
        calls.append((clock.now(), host, port, kw))
        return fake_result(host, port, **kw)

    runner = FabricRunner(
        sched, "b", run=run, now=clock.now, sleep=clock.sleep, rng=random.Random(1)
    )
    outcomes = runner.run_cycle()
    mine = sched.client_slots("b")
    assert len(mine) == 3 and len(calls) == 3  # one client slot per peer
    for (at, host, port, kw), slot in zip(calls, mine, strict=True):
        slot_at = 1000.0 + slot.index * 10
        assert slot_at <= at <= slot_at + 3
        assert host == slot.server and port == 5201
        assert kw["duration_s"] == 2 and kw["timeout_s"] <= 10 - 3
    assert all(o.result is not None for o in outcomes)


def test_runner_skips_passed_slots_and_reports_errors():
    sched = make_schedule(["a", "b:7000", "c"], start_at=0.0, duration_s=1, jitter_s=0, slot_s=5)
    clock = FakeTime(0.0)
    mine = sched.client_slots("a")
    clock.t = mine[0].index * 5 + 4.5  # too late for the first slot

    def run(host, port, **kw):
        raise Iperf3UnreachableError(f"iperf3: unable to connect to {host}:{port}")

    seen: list[SlotOutcome] = []
    runner = FabricRunner(
        sched, "a", run=run, now=clock.now, sleep=clock.sleep, on_outcome=seen.append
    )
    outcomes = runner.run_cycle()
    assert outcomes[0].skipped and outcomes[0].error is None
    assert all(o.error is not None and o.error.reason == "unreachable" for o in outcomes[1:])
    assert seen == outcomes


def test_periodic_cycle_start():
    sched = make_schedule(["a", "b"], start_at=100.0, duration_s=1, slot_s=10, period_s=60)
    assert sched.cycle_start(50.0) == 100.0
    assert sched.cycle_start(100.0) == 100.0
    assert sched.cycle_start(175.0) == 160.0
    with pytest.raises(ValueError, match="me"):
        sched.client_slots("zz")
