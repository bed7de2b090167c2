"""Pod discovery against a fake CoreV1Api that answers like the API server (real V1Pod models)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubernetes.client import (
    ApiException,
    V1Container,
    V1ListMeta,
    V1ObjectMeta,
    V1Pod,
    V1PodList,
    V1PodSpec,
    V1PodStatus,
)

from agent.collectors.inference import InferenceTarget
from agent.kube.pods import DiscoveryError, PodLister, PodTargets

NODE = "gpu-node-7"


def pod(
    name: str,
    namespace: str = "llm",
    node: str = NODE,
    phase: str = "Running",
    ip: str | None = "10.42.3.17",
    annotations: dict[str, str] | None = None,
) -> V1Pod:
    return V1Pod(
        metadata=V1ObjectMeta(name=name, namespace=namespace, annotations=annotations),
        spec=V1PodSpec(node_name=node, containers=[V1Container(name="server")]),
        status=V1PodStatus(phase=phase, pod_ip=ip),
    )


class FakeCoreV1Api:
    """list_pod_for_all_namespaces as the API server answers it: field selector, paging, errors."""

    def __init__(self, pods: list[V1Pod], error: ApiException | None = None) -> None:
        self.pods = pods
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def list_pod_for_all_namespaces(
        self,
        *,
        field_selector: str | None = None,
        limit: int | None = None,
        _continue: str | None = None,
        _request_timeout: float | None = None,
    ) -> V1PodList:
        self.calls.append(
            {"field_selector": field_selector, "limit": limit, "_continue": _continue}
        )
        if self.error is not None:
            raise self.error
        items = self.pods
        if field_selector is not None:
            field, _, value = field_selector.partition("=")
            if field != "spec.nodeName":
                raise ApiException(status=400, reason="Bad Request")
            items = [p for p in items if p.spec is not None and p.spec.node_name == value]
        start = int(_continue or 0)
        end = start + limit if limit else len(items)
        token = str(end) if end < len(items) else None
        return V1PodList(items=items[start:end], metadata=V1ListMeta(_continue=token))


SCRAPE = {"tuneloop.io/scrape": "true"}


def test_lists_running_annotated_pods_on_this_node_with_defaults_and_overrides() -> None:
    api = FakeCoreV1Api(
        [
            pod("vllm-0", annotations=SCRAPE),
            pod(
                "tgi-0",
                namespace="chat",
                ip="fd00::12",
                annotations={
                    **SCRAPE,
                    "tuneloop.io/port": "3000",
                    "tuneloop.io/path": "/prom",
                    "tuneloop.io/engine": "tgi",
                    "tuneloop.io/model": "bigcode/starcoder2-15b",
                },
            ),
            pod("not-annotated"),
            pod("opted-out", annotations={"tuneloop.io/scrape": "false"}),
            pod("pending", phase="Pending", ip=None, annotations=SCRAPE),
            pod("elsewhere", node="gpu-node-8", annotations=SCRAPE),
        ]
    )
    targets = PodLister(api).list_annotated_pods(NODE)
    assert targets == [
        InferenceTarget(
            "chat/tgi-0", "http://[fd00::12]:3000/prom", "tgi", "bigcode/starcoder2-15b"
        ),
        InferenceTarget("llm/vllm-0", "http://10.42.3.17:8000/metrics", "auto", None),
    ]
    assert api.calls[0]["field_selector"] == f"spec.nodeName={NODE}"


def test_pages_through_continue_tokens() -> None:
    pods = [pod(f"p{i:03d}", annotations=SCRAPE) for i in range(1203)]
    api = FakeCoreV1Api(pods)
    targets = PodLister(api).list_annotated_pods(NODE)
    assert len(targets) == 1203
    assert [c["_continue"] for c in api.calls] == [None, "500", "1000"]


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        ("tuneloop.io/port", "http", "tuneloop.io/port must be a port number, got 'http'"),
        ("tuneloop.io/port", "70000", "tuneloop.io/port must be within 1-65535"),
        ("tuneloop.io/path", "metrics", "tuneloop.io/path must be an absolute URL path"),
        ("tuneloop.io/engine", "llamacpp", "tuneloop.io/engine must be one of"),
    ],
)
def test_a_wrong_annotation_skips_that_pod_only_and_says_why(
    annotation: str, value: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeCoreV1Api(
        [pod("bad", annotations={**SCRAPE, annotation: value}), pod("good", annotations=SCRAPE)]
    )
    with caplog.at_level(logging.WARNING, logger="agent.kube.pods"):
        targets = PodLister(api).list_annotated_pods(NODE)
    assert [t.name for t in targets] == ["llm/good"]
    assert "pod llm/bad skipped" in caplog.text and message in caplog.text


def test_forbidden_raises_a_discovery_error_that_names_node_and_fix() -> None:
    api = FakeCoreV1Api([], error=ApiException(status=403, reason="Forbidden"))
    with pytest.raises(DiscoveryError, match=rf"node {NODE}: HTTP 403 Forbidden .*ServiceAccount"):
        PodLister(api).list_annotated_pods(NODE)


def test_empty_node_name_is_refused() -> None:
    with pytest.raises(DiscoveryError, match="node name is empty"):
        PodLister(FakeCoreV1Api([])).list_annotated_pods("")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_pod_targets_refresh_at_most_every_interval_and_merge_static() -> None:
    api = FakeCoreV1Api([pod("vllm-0", annotations=SCRAPE)])
    lister = PodLister(api)
    clock = Clock()
    static = [InferenceTarget("static/tgi", "http://127.0.0.1:3000/metrics", "tgi")]
    targets = PodTargets(lambda: lister.list_annotated_pods(NODE), static, 60.0, clock)
    assert [t.name for t in targets()] == ["static/tgi", "llm/vllm-0"]
    api.pods.append(pod("sglang-0", annotations=SCRAPE))
    clock.t += 59
    assert [t.name for t in targets()] == ["static/tgi", "llm/vllm-0"]
    assert len(api.calls) == 1
    clock.t += 1
    assert [t.name for t in targets()] == ["static/tgi", "llm/sglang-0", "llm/vllm-0"]
    assert len(api.calls) == 2


def test_static_target_wins_over_a_discovered_one_of_the_same_name() -> None:
    static = [InferenceTarget("llm/vllm-0", "http://127.0.0.1:9000/metrics", "vllm")]
    api = FakeCoreV1Api([pod("vllm-0", annotations=SCRAPE)])
    targets = PodTargets(lambda: PodLister(api).list_annotated_pods(NODE), static)()
    assert targets == static


def test_failed_discovery_keeps_the_last_list_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeCoreV1Api([pod("vllm-0", annotations=SCRAPE)])
    clock = Clock()
    targets = PodTargets(lambda: PodLister(api).list_annotated_pods(NODE), (), 60.0, clock)
    assert [t.name for t in targets()] == ["llm/vllm-0"]
    api.error = ApiException(status=403, reason="Forbidden")
    with caplog.at_level(logging.INFO, logger="agent.kube.pods"):
        for _ in range(3):
            clock.t += 60
            assert [t.name for t in targets()] == ["llm/vllm-0"]
        failures = [r for r in caplog.records if "discovery failed" in r.getMessage()]
        assert len(failures) == 1 and "403" in failures[0].getMessage()
        api.error = None
        api.pods.clear()
        clock.t += 60
        assert targets() == []
    assert any("recovered" in r.getMessage() for r in caplog.records)


def test_discovered_targets_feed_the_collector() -> None:
    from pathlib import Path

    from agent.collectors.inference import InferenceCollector

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "inference"
    api = FakeCoreV1Api([pod("sglang-0", annotations={**SCRAPE, "tuneloop.io/port": "30000"})])
    seen: list[str] = []

    def fetch(url: str, timeout_s: float) -> str:
        seen.append(url)
        return (fixtures / "sglang.metrics").read_text()

    targets = PodTargets(lambda: PodLister(api).list_annotated_pods(NODE))
    collector = InferenceCollector(targets, fetch=fetch)
    collector.refresh()
    (result,) = collector.last_results
    assert seen == ["http://10.42.3.17:30000/metrics"]
    assert (result.target.name, result.engine, result.up) == ("llm/sglang-0", "sglang", True)


def test_discovering_targets_outside_a_cluster_keeps_static_and_logs_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from agent.kube.pods import discovering_targets

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    static = [InferenceTarget("static/vllm", "http://127.0.0.1:8000/metrics")]
    targets = discovering_targets(static, NODE, refresh_s=0.0)
    with caplog.at_level(logging.WARNING, logger="agent.kube.pods"):
        assert targets() == static
        assert targets() == static
    failures = [r for r in caplog.records if "discovery failed" in r.getMessage()]
    assert len(failures) == 1
