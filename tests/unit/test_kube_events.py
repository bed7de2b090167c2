"""Audit records become Kubernetes Events on the objects a trial touched (fake API server)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kube_apiserver import FakeApiServer, deployment
from tests.unit.tuner_doubles import FakeClock, ModelSignals
from tuner.cli import Factories, main
from tuner.kube.client import KubeClient
from tuner.kube.events import KubeEventSink, in_cluster, object_of
from tuner.spec import loads_experiment

SCALE_EXPERIMENT = """
name: replicas
mode: apply
appliers:
  scale: {{kind: k8s-scale, host: "{host}"}}
knobs:
  - {{name: web, type: int, applier: scale, target: ml/web, class: warm, bounds: [1, 8]}}
objective: {{signal: p50_ttft_seconds, direction: minimize}}
measurement: {{warmup: {{warm: 1s}}, window: 5s, check_interval: 5s, min_request_rate: 1}}
budget: {{trials: 3}}
safety: {{max_relative_step: null, cooldown: 0s}}
strategy: {{name: random, seed: 3}}
"""


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        server.add("deployments", deployment("ml", "web", replicas=2))
        yield server


def events(api: FakeApiServer) -> list[dict[str, Any]]:
    return [o for (r, _, _), o in sorted(api.objects.items()) if r == "events"]


def tune(api: FakeApiServer, tmp_path: Path) -> int:
    exp = tmp_path / "exp.yaml"
    exp.write_text(SCALE_EXPERIMENT.format(host=api.url))

    def replicas() -> dict[str, Any]:
        return {"ml/web": api.get("deployments", "ml", "web")["spec"]["replicas"]}

    clock = FakeClock()
    factories = Factories(
        signals=lambda exp: ModelSignals(replicas, {"ml/web": 5}),
        clock=lambda: clock,
        kube_events=lambda: KubeClient.connect(host=api.url, timeout_s=2.0),
    )
    argv = ["tune", str(exp), "--apply", "--state", str(tmp_path / "state"), "--trials", "3"]
    return main(argv, factories)


def test_tune_with_a_k8s_applier_records_events_on_the_deployment(
    api: FakeApiServer, tmp_path: Path
) -> None:
    assert tune(api, tmp_path) == 0
    got = events(api)
    assert got, "no Events were created"
    reasons = {e["reason"] for e in got}
    assert {"TuneloopTrialApplied", "TuneloopTrialMeasured", "TuneloopBestApplied"} <= reasons
    for event in got:
        assert event["involvedObject"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "namespace": "ml",
            "name": "web",
        }
        assert event["metadata"]["namespace"] == "ml"
        assert event["type"] in ("Normal", "Warning")
        assert event["message"].startswith("replicas")
    applied = [e for e in got if e["reason"] == "TuneloopTrialApplied"]
    assert any("web=" in e["message"] for e in applied)


def test_forbidden_events_do_not_stop_tuning_and_are_logged_once(
    api: FakeApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api.deny("create", "events")
    with caplog.at_level(logging.WARNING, logger="tuner.kube.events"):
        assert tune(api, tmp_path) == 0
    assert events(api) == []
    warnings = [r for r in caplog.records if "cannot create Kubernetes Events" in r.message]
    assert len(warnings) == 1, warnings
    assert "403" in warnings[0].getMessage()
    audit = (tmp_path / "state" / "audit.jsonl").read_text()
    assert '"action": "apply_best"' in audit, "tuning went on to the end"


def test_an_experiment_without_k8s_objects_reports_on_the_tuners_pod(
    api: FakeApiServer,
) -> None:
    exp = loads_experiment(
        SCALE_EXPERIMENT.format(host=api.url).replace("k8s-scale", "haproxy"), "exp"
    )
    client = KubeClient.connect(host=api.url, timeout_s=2.0)
    sink = KubeEventSink(client, [exp], pod_name="tuner-0", pod_namespace="tuneloop")
    sink({"action": "rollback", "experiment": "replicas", "trial": 2, "reason": "SLO breach"})
    sink({"action": "propose", "experiment": "replicas", "trial": 3})  # no Event
    (event,) = events(api)
    assert event["involvedObject"]["kind"] == "Pod"
    assert event["involvedObject"]["name"] == "tuner-0"
    assert (event["reason"], event["type"]) == ("TuneloopRolledBack", "Warning")
    assert "reason=SLO breach" in event["message"]
    nowhere = KubeEventSink(client, [exp], pod_name="", pod_namespace="")
    nowhere({"action": "rollback", "experiment": "replicas"})
    assert len(events(api)) == 1, "no pod known and no object: no Event"


def test_targets_name_their_objects_and_cluster_detection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert object_of("k8s-env", "ml/llm/vllm:MAX_NUM_SEQS") is not None
    ref = object_of("k8s-hpa", "ml/llm-hpa:maxReplicas")
    assert ref is not None and (ref.kind, ref.name) == ("HorizontalPodAutoscaler", "llm-hpa")
    cm = object_of("k8s-configmap", "tuneloop/tuneloop-node-tuning:net.core.rmem_max")
    assert cm is not None and (cm.kind, cm.namespace) == ("ConfigMap", "tuneloop")
    assert object_of("haproxy", "llm/r0") is None
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert not in_cluster([])
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert in_cluster([])
