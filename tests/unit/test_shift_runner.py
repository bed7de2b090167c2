"""The shifter's loop with test doubles: applies, audits, persists, resumes, and never fights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from tests.unit.tuner_doubles import SHIFT_CONFIG, FakeClock, MemoryApplier, ScriptedSignals
from tuneloop.validation import ConfigError
from tuner.appliers.base import ApplierError
from tuner.audit import AuditLog
from tuner.shift.config import parse_shift_config
from tuner.shift.runner import Shifter
from tuner.shift.state import UNKNOWN, active_balancers
from tuner.signals.base import SignalError


class BrokenApplier(MemoryApplier):
    def apply(self, desired):
        raise ApplierError("haproxy: connection refused")


def make(tmp_path: Path, applier=None, **overrides):
    config = parse_shift_config({**SHIFT_CONFIG, **overrides})
    signals = ScriptedSignals()
    applier = applier or MemoryApplier({f"llm/r{i}": 16 for i in range(3)})
    clock = FakeClock()
    audit = AuditLog(tmp_path / "audit.jsonl", clock=clock)
    shifter = Shifter(
        config, applier, signals, clock=clock, audit=audit, state_dir=tmp_path / "state"
    )
    return shifter, applier, signals, audit


def test_shift_and_restore_go_to_the_balancer_and_the_audit_log(tmp_path: Path) -> None:
    shifter, applier, signals, audit = make(tmp_path)
    signals.p99 = {"r0": 0.9}
    shifter.run(intervals=2)
    assert applier.read(["llm/r0"]) == {"llm/r0": 8}
    assert active_balancers(tmp_path / "state") == {"haproxy:127.0.0.1:9999"}
    signals.p99 = {}
    shifter.run(intervals=5)
    assert applier.read(["llm/r0", "llm/r1"]) == {"llm/r0": 16, "llm/r1": 16}
    assert active_balancers(tmp_path / "state") == set()
    actions = [(e["action"], e["target"], e["weight_to"]) for e in audit.entries()]
    assert actions == [
        ("shift", "llm/r0", 12),
        ("shift", "llm/r0", 8),
        ("restore", "llm/r0", 12),
        ("restore", "llm/r0", 16),
    ]
    first = audit.entries()[0]
    assert first["p99"] == pytest.approx(0.9) and first["readings"]["llm/r1"] == pytest.approx(0.1)
    text = generate_latest(shifter.metrics.registry).decode()
    assert 'tuneloop_shift_events_total{action="shift",shift="llm",target="llm/r0"} 2.0' in text
    assert 'tuneloop_shift_active{shift="llm",target="llm/r0"} 0.0' in text


def test_a_restart_keeps_the_tuned_baselines(tmp_path: Path) -> None:
    shifter, applier, signals, _ = make(tmp_path)
    signals.p99 = {"r0": 0.9}
    shifter.run(intervals=2)
    again, _, _, _ = make(tmp_path, applier=applier)
    again.start()
    assert {t: s.baseline for t, s in again.states.items()}["llm/r0"] == 16
    assert again.states["llm/r0"].weight == 8


def test_no_reading_holds_and_a_failed_apply_keeps_the_old_weights(tmp_path: Path) -> None:
    shifter, applier, signals, audit = make(tmp_path)
    signals.p99 = {"r0": SignalError}
    shifter.run(intervals=2)
    assert applier.read(["llm/r0"]) == {"llm/r0": 16}
    broken = BrokenApplier({f"llm/r{i}": 16 for i in range(3)})
    shifter, _, signals, audit = make(tmp_path / "b", applier=broken)
    signals.p99 = {"r0": 0.9}
    shifter.tick()
    assert shifter.states["llm/r0"].weight == 16
    assert [e["action"] for e in audit.entries()] == ["shift-failed"]


def test_min_apply_interval_rate_limits_changes(tmp_path: Path) -> None:
    shifter, applier, signals, _ = make(tmp_path, min_apply_interval="12s")
    signals.p99 = {"r0": 0.9}
    weights = []
    for _ in range(4):
        shifter.tick()
        shifter.clock.sleep(5)
        weights.append(applier.read(["llm/r0"])["llm/r0"])
    assert weights == [12, 12, 12, 8]  # t=0, (5 and 10 held back), t=15


def test_restore_puts_baselines_back(tmp_path: Path) -> None:
    shifter, applier, signals, _ = make(tmp_path)
    signals.p99 = {"r0": 0.9}
    shifter.run(intervals=3)
    assert shifter.restore() == {f"llm/r{i}": 16 for i in range(3)}
    assert applier.read(["llm/r0"]) == {"llm/r0": 16}
    assert active_balancers(tmp_path / "state") == set()


def test_a_damaged_state_file_counts_as_active(tmp_path: Path) -> None:
    (tmp_path / "shift-x.json").write_text("{not json")
    assert active_balancers(tmp_path) == {UNKNOWN}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"replicas": [{"target": "llm/r0"}]}, "replicas: must hold at least 2 items"),
        ({"balancer": {"kind": "envoy"}}, "balancer.kind: must be one of haproxy, nginx"),
        ({"policy": {"clear_ratio": 1.5}}, "policy.clear_ratio"),
        (
            {"replicas": [{"target": "a", "inference_target": 'x"y'}, {"target": "b"}]},
            "replicas.0.inference_target: cannot go into a PromQL label|replicas\\[0\\]",
        ),
        ({"latency": {"metric": "tpot"}}, "latency.metric: must be one of e2e, ttft, itl"),
    ],
)
def test_config_errors_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_shift_config({**SHIFT_CONFIG, **change})


def test_default_query_reads_the_agents_histogram() -> None:
    config = parse_shift_config(SHIFT_CONFIG)
    query = config.replicas[1].latency.query or ""
    assert "tuneloop_inference_e2e_latency_seconds_bucket" in query
    assert 'target="r1"' in query and query.startswith("histogram_quantile(0.99,")
    assert json.dumps(config.settings.threshold_s) == "0.2"


def test_the_shipped_example_loads() -> None:
    from tests.paths import ROOT
    from tuner.shift.config import load_shift_config

    config = load_shift_config(ROOT / "examples" / "shift.yaml")
    assert config.balancer == "haproxy:/run/haproxy/admin.sock"
    assert [r.target for r in config.replicas] == [f"llm/replica-{x}" for x in "abc"]
    assert config.settings.relative == 2.0 and config.settings.hold_s == 60.0
