"""Every shift and restore becomes a Kubernetes Event on the tuner's pod, with its readings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.kube_apiserver import FakeApiServer
from tests.unit.tuner_doubles import SHIFT_CONFIG, FakeClock, MemoryApplier, ScriptedSignals
from tuner.audit import AuditLog
from tuner.cli import main
from tuner.kube.client import KubeClient
from tuner.kube.events import KubeEventSink
from tuner.shift.config import parse_shift_config
from tuner.shift.runner import Shifter
from tuner.spec import loads_experiment
from tuner.wiring import Factories

POD = {"apiVersion": "v1", "kind": "Pod", "namespace": "tuneloop", "name": "tuner-0"}


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


def events(api: FakeApiServer) -> list[dict[str, Any]]:
    found = [o for (r, _, _), o in api.objects.items() if r == "events"]
    return sorted(found, key=lambda e: e["metadata"]["name"])


def sink_for(api: FakeApiServer, experiments: Any = ()) -> KubeEventSink:
    client = KubeClient.connect(host=api.url, timeout_s=2.0)
    clock = iter(range(1_700_000_000, 1_800_000_000))  # distinct Event names
    return KubeEventSink(
        client, experiments, pod_name="tuner-0", pod_namespace="tuneloop", now=lambda: next(clock)
    )


def test_a_shifter_run_records_shift_and_restore_events_with_readings(
    api: FakeApiServer, tmp_path: Path
) -> None:
    clock = FakeClock()
    applier = MemoryApplier({f"llm/r{i}": 16 for i in range(3)})
    signals = ScriptedSignals()
    audit = AuditLog(tmp_path / "audit.jsonl", sink_for(api), clock)
    shifter = Shifter(
        parse_shift_config(SHIFT_CONFIG), applier, signals, clock=clock, audit=audit,
        state_dir=tmp_path,
    )  # fmt: skip
    signals.p99 = {"r0": 0.9}
    shifter.run(intervals=1)
    signals.p99 = {}
    shifter.run(intervals=4)
    got = [(e["reason"], e["type"]) for e in events(api)]
    assert got == [
        ("TuneloopTrafficShifted", "Warning"),
        ("TuneloopTrafficRestored", "Normal"),
    ]
    shifted, restored = events(api)
    assert shifted["involvedObject"] == POD and shifted["metadata"]["namespace"] == "tuneloop"
    message = shifted["message"]
    assert message.startswith("llm: shift; llm/r0 weight 16 -> 12 on haproxy:127.0.0.1:9999")
    assert "smoothed P99 0.900s (threshold 0.200s)" in message
    assert "P99 readings llm/r0=0.900s, llm/r1=0.100s, llm/r2=0.100s" in message
    assert "llm/r0 weight 12 -> 16" in restored["message"]


def test_failures_are_warnings_and_a_blocked_shift_makes_no_event(api: FakeApiServer) -> None:
    # A shift named like a Kubernetes experiment is still about the balancer: the pod.
    exp = loads_experiment(
        """
name: llm
appliers: {scale: {kind: k8s-scale}}
knobs: [{name: web, type: int, applier: scale, target: ml/web, class: warm, bounds: [1, 8]}]
objective: {signal: p50_ttft_seconds, direction: minimize}
""",
        "exp",
    )
    sink = sink_for(api, [exp])
    sink({"action": "shift-blocked", "experiment": "llm", "target": "llm/r1", "reason": "busy"})
    assert events(api) == []
    weights = {"llm/r0": 12}
    sink({"action": "shift-failed", "experiment": "llm", "weights": weights, "error": "refused"})
    sink({"action": "shift-error", "experiment": "llm", "error": "RuntimeError: boom"})
    sink({"action": "shift-restore-all", "experiment": "llm", "weights": {"llm/r0": 16}})
    got = [(e["reason"], e["type"], e["involvedObject"]["kind"]) for e in events(api)]
    assert got == [
        ("TuneloopShiftFailed", "Warning", "Pod"),
        ("TuneloopShiftFailed", "Warning", "Pod"),
        ("TuneloopTrafficRestored", "Normal", "Pod"),
    ]
    failed, error, restored = (e["message"] for e in events(api))
    assert failed == "llm: shift-failed; weights llm/r0=12; error=refused"
    assert error == "llm: shift-error; error=RuntimeError: boom"
    assert restored == "llm: shift-restore-all; weights llm/r0=16"


def test_tuneloop_shift_sends_events_in_a_cluster(
    api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("POD_NAME", "tuner-0")
    monkeypatch.setenv("POD_NAMESPACE", "tuneloop")
    config = tmp_path / "shift.yaml"
    config.write_text(yaml.safe_dump(SHIFT_CONFIG))
    applier = MemoryApplier({f"llm/r{i}": 16 for i in range(3)})
    factories = Factories(
        shift_applier=lambda c: applier,
        shift_signals=lambda c: ScriptedSignals(),
        kube_events=lambda: KubeClient.connect(host=api.url, timeout_s=2.0),
    )
    argv = ["shift", str(config), "--state", str(tmp_path / "state"), "--restore"]
    assert main(argv, factories) == 0
    (event,) = events(api)
    assert (event["reason"], event["involvedObject"]) == ("TuneloopTrafficRestored", POD)
    assert "llm/r0=16" in event["message"]
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert main(argv, factories) == 0
    assert len(events(api)) == 1, "outside a cluster: the audit log only"
