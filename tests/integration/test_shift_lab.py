"""The shifter on real HAProxy, reading the agent's server-side P99 from a real Prometheus.

One lab of three identical replicas behind HAProxy, under a bounded open-loop load. Replicas
are slowed with the lab's throttle (SIGSTOP/SIGCONT duty cycle). Every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import programs
from lab.lab import Lab, LabConfig, running_lab
from lab.throttle import Throttle
from tuneloop.clock import RealClock
from tuner.appliers.haproxy import HaproxyApplier
from tuner.audit import AuditLog
from tuner.controller_config import load_controller_config
from tuner.controller_run import run_controller
from tuner.shift.config import parse_shift_config
from tuner.shift.runner import Shifter
from tuner.signals.prometheus import PrometheusSignals
from tuner.wiring import Factories

pytestmark = pytest.mark.skipif(
    not all(programs.available(b) for b in (programs.HAPROXY_BINARY, programs.PROMETHEUS_BINARY)),
    reason="haproxy and prometheus are needed",
)

TARGETS = [f"llm/r{i}" for i in range(3)]
BASELINE = dict.fromkeys(TARGETS, 16)
INTERVAL_S = 2.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = LabConfig(
        tmp_path_factory.mktemp("shiftlab"),
        replicas=("H100", "H100", "H100"),
        balancer="haproxy",
        die_with_parent=True,
        tuner_metrics=False,
    )
    with running_lab(config) as running:
        running.start_load(
            [
                *("--target", f"127.0.0.1:{running.port('haproxy')}", "--rate", "8"),
                *("--duration", "240", "--max-requests", "2400", "--timeout", "10", "--seed", "3"),
            ],
        )
        yield running


def shift_settings(lab: Lab, **policy: Any) -> dict[str, Any]:
    """The lab's shifter file: its HAProxy, its Prometheus, the agent's P99 of each replica."""
    return {
        "name": "lab",
        "signals": {"prometheus": lab.url("prometheus")},
        "balancer": {"kind": "haproxy", "address": f"127.0.0.1:{lab.port('haproxy_admin')}"},
        "replicas": [{"target": t} for t in TARGETS],
        "latency": {"window": "6s"},
        "interval": f"{INTERVAL_S}s",
        "policy": {"threshold": "400ms", "clear_ratio": 0.7, "hold": "4s", **policy},
    }


def shifter(lab: Lab, state: Path, **policy: Any) -> tuple[Shifter, HaproxyApplier, AuditLog]:
    admin = HaproxyApplier(f"127.0.0.1:{lab.port('haproxy_admin')}")
    admin.apply(BASELINE)
    config = parse_shift_config(shift_settings(lab, **policy))
    clock = RealClock()
    audit = AuditLog(state / "audit.jsonl", clock=clock)
    return (
        Shifter(
            config,
            admin,
            PrometheusSignals(lab.url("prometheus")),
            clock=clock,
            audit=audit,
            state_dir=state,
        ),
        admin,
        audit,
    )


def tick_until(s: Shifter, done: Callable[[], bool], max_ticks: int) -> bool:
    """Tick every interval until ``done()`` or ``max_ticks`` ticks have passed."""
    for _ in range(max_ticks):
        began = time.monotonic()
        s.tick()
        if done():
            return True
        time.sleep(max(0.0, INTERVAL_S - (time.monotonic() - began)))
    return False


def wait_for_data(s: Shifter) -> None:
    assert tick_until(s, lambda: all(st.smoothed is not None for st in s.states.values()), 15), (
        "no per-replica latency in Prometheus: is the agent scraping the replicas?"
    )


def test_shift_respects_max_drained_then_restores(lab: Lab, tmp_path: Path) -> None:
    s, admin, audit = shifter(lab, tmp_path, max_drained=1)
    s.start()
    wait_for_data(s)
    assert admin.read(TARGETS) == BASELINE, "a healthy fleet is not shifted"
    with Throttle(lab.record("r0").pid, run_fraction=0.25):
        assert tick_until(s, lambda: s.states["llm/r0"].weight < 16, 15), audit.entries()
        with Throttle(lab.record("r1").pid, run_fraction=0.25):
            blocked = tick_until(
                s,
                lambda: any(
                    e["action"] == "shift-blocked" and e["target"] == "llm/r1"
                    for e in audit.entries()
                ),
                15,
            )
            weights = admin.read(TARGETS)
    assert blocked, audit.entries()
    r0 = weights["llm/r0"]
    assert isinstance(r0, int) and r0 < 16 and weights["llm/r1"] == 16 and weights["llm/r2"] == 16
    assert tick_until(s, lambda: admin.read(TARGETS) == BASELINE, 30), audit.entries()
    restores = [e for e in audit.entries() if e["action"] == "restore"]
    assert restores and restores[-1]["weight_to"] == 16
    assert not s.states["llm/r0"].shifted


def test_a_fleet_wide_slowdown_leaves_nothing_shifted(lab: Lab, tmp_path: Path) -> None:
    s, admin, audit = shifter(lab, tmp_path)
    s.start()
    wait_for_data(s)
    throttles = [Throttle(lab.record(f"r{i}").pid, run_fraction=0.25) for i in range(3)]
    for t in throttles:
        t.__enter__()
    try:
        saw_slow = tick_until(
            s, lambda: all((st.smoothed or 0) > 0.4 for st in s.states.values()), 15
        )
        seen = len(audit.entries())
        # A replica read as slow before the others may take steps (how many depends on how far
        # apart the readings rose); once every replica is degraded, nothing stays shifted.
        settled = tick_until(s, lambda: admin.read(TARGETS) == BASELINE, 6)
        tick_until(s, lambda: False, 2)
        weights = admin.read(TARGETS)
    finally:
        for t in throttles:
            t.__exit__(None, None, None)
    assert saw_slow, [st.smoothed for st in s.states.values()]
    assert settled and weights == BASELINE, audit.entries()
    since_all_slow = audit.entries()[seen:]
    assert not [e for e in since_all_slow if e["action"] == "shift"], since_all_slow
    assert any(e["action"] == "shift-blocked" for e in since_all_slow), since_all_slow


def test_the_controller_shifts_and_restores_the_baselines_when_stopped(
    lab: Lab, tmp_path: Path
) -> None:
    admin = HaproxyApplier(f"127.0.0.1:{lab.port('haproxy_admin')}")
    admin.apply(BASELINE)
    (tmp_path / "shift.yaml").write_text(yaml.safe_dump(shift_settings(lab)))
    (tmp_path / "controller.yaml").write_text(
        "shifts: [shift.yaml]\nstate: state\nmetrics_port: 0\ninterval: 1s\n"
    )
    config = load_controller_config(tmp_path / "controller.yaml")
    stop = threading.Event()
    code: list[int] = []
    runner = threading.Thread(
        target=lambda: code.append(run_controller(config, Factories(kube_events=None), stop=stop)),
        daemon=True,
    )
    audit = AuditLog(tmp_path / "state" / "audit.jsonl")
    with Throttle(lab.record("r0").pid, run_fraction=0.25):
        runner.start()
        try:
            deadline = time.monotonic() + 20 * INTERVAL_S
            while admin.read(["llm/r0"])["llm/r0"] == 16 and time.monotonic() < deadline:
                time.sleep(0.2)
            shifted = admin.read(TARGETS)
        finally:
            stop.set()
            runner.join(30)
    assert shifted["llm/r0"] != 16, audit.entries()
    assert code == [0]
    assert admin.read(TARGETS) == BASELINE, "the stopped controller put the baselines back"
    actions = [e["action"] for e in audit.entries()]
    assert "shift" in actions and actions[-1] == "shift-restore-all", actions
