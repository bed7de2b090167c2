"""The real-time replica over loopback: completions (plain and streaming), models, /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tuner.sim.profiles import profile
from tuner.sim.replica_server import ReplicaServer

pytestmark = pytest.mark.integration


@pytest.fixture
def base() -> Iterator[str]:
    server = ReplicaServer(profile("H100"), "127.0.0.1", 0, batch_limit=8)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_completion_timing_follows_the_profile(base: str) -> None:
    gpu = profile("H100")
    start = time.monotonic()
    r = requests.post(
        f"{base}/v1/completions", json={"prompt": "x" * 400, "max_tokens": 20}, timeout=10
    )
    elapsed = time.monotonic() - start
    assert r.status_code == 200
    body = r.json()
    assert body["usage"] == {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["text"].split() == [f"tok{i}" for i in range(1, 21)]
    modelled = gpu.step_seconds(1, 100, 100) + 19 * gpu.step_seconds(1, 110)
    assert modelled * 0.9 < elapsed < modelled + 1.0


def test_token_counters_and_inter_token_histogram(base: str) -> None:
    requests.post(f"{base}/v1/completions", json={"prompt": "x" * 40, "max_tokens": 6}, timeout=10)
    state = _engine_state(base)
    assert state["vllm:generation_tokens_total"] == 6
    assert state["vllm:prompt_tokens_total"] == 10
    assert state["vllm:time_per_output_token_seconds_count"] == 5  # gaps between 6 tokens
    assert state["vllm:num_preemptions_total"] == 0


def test_streaming_sends_one_event_per_token(base: str) -> None:
    r = requests.post(
        f"{base}/v1/completions",
        json={"prompt": "hello", "max_tokens": 5, "stream": True},
        stream=True,
        timeout=10,
    )
    assert r.headers["Content-Type"] == "text/event-stream"
    lines = [ln for ln in r.iter_lines(decode_unicode=True) if ln]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln.removeprefix("data: ")) for ln in lines[:-1]]
    assert [c["choices"][0]["text"] for c in chunks] == [f" tok{i}" for i in range(1, 6)]


def test_models_metrics_and_errors(base: str) -> None:
    assert requests.get(f"{base}/health", timeout=5).status_code == 200
    assert requests.get(f"{base}/v1/models", timeout=5).json()["data"][0]["id"]
    bad = requests.post(f"{base}/v1/completions", json={"max_tokens": -1}, timeout=5)
    assert bad.status_code == 400 and "max_tokens" in bad.json()["error"]["message"]
    requests.post(f"{base}/v1/completions", json={"prompt": "hi", "max_tokens": 3}, timeout=10)
    text = requests.get(f"{base}/metrics", timeout=5).text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
    ):
        assert name in fams
    ttft = fams["vllm:time_to_first_token_seconds"]
    count = [s.value for s in ttft.samples if s.name.endswith("_count")]
    assert count == [1.0]
    e2e = fams["vllm:e2e_request_latency_seconds"]
    assert [s.value for s in e2e.samples if s.name.endswith("_count")] == [1.0]


def _engine_state(base: str) -> dict[str, float]:
    text = requests.get(f"{base}/metrics", timeout=5).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            reason = sample.labels.get("finished_reason")
            key = f"{sample.name}:{reason}" if reason else sample.name
            found[key] = sample.value
    return found


def test_a_client_that_gives_up_aborts_its_request(base: str) -> None:
    # A long request whose client times out: the engine must drop it, not keep generating.
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{base}/v1/completions", json={"prompt": "x" * 40, "max_tokens": 100000}, timeout=0.5
        )
    deadline = time.monotonic() + 5
    state = _engine_state(base)
    while time.monotonic() < deadline and state.get("vllm:num_requests_running", 1) != 0:
        time.sleep(0.1)
        state = _engine_state(base)
    assert state["vllm:num_requests_running"] == 0
    assert state["vllm:request_success_total:abort"] == 1
