"""The inference collector with an injected fetch: isolation, labels, failures, golden output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agent.collectors.base import CollectorError
from agent.collectors.inference import (
    FetchError,
    InferenceCollector,
    InferenceTarget,
    classify,
)
from tuneloop import catalog

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"


def fixture_fetch(extra: dict[str, Callable[[], str]] | None = None):
    """Serve ``http://<name>/metrics`` from ``tests/fixtures/inference/<name>.metrics``."""
    extra = extra or {}

    def fetch(url: str, timeout_s: float) -> str:
        host = url.split("/")[2]
        if host in extra:
            return extra[host]()
        return (FIXTURES / f"{host}.metrics").read_text()

    return fetch


def samples(collector: InferenceCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in collector.scrape():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def raise_(exc: Exception) -> Callable[[], str]:
    def fail() -> str:
        raise exc

    return fail


def test_all_engines_normalised_in_one_collection() -> None:
    targets = [
        InferenceTarget("default/vllm-0", "http://vllm/metrics"),
        InferenceTarget("default/sgl-0", "http://sglang/metrics", engine="sglang"),
        InferenceTarget("default/tgi-0", "http://tgi/metrics", model="bigcode/starcoder2-15b"),
        InferenceTarget("default/triton-0", "http://triton/metrics"),
    ]
    got = samples(InferenceCollector(targets, fetch=fixture_fetch()))
    llama = "meta-llama/Llama-3.1-8B-Instruct"
    w = "tuneloop_inference_requests_waiting"
    assert got[key(w, target="default/vllm-0", engine="vllm", model=llama)] == 3.0
    assert (
        got[key(w, target="default/sgl-0", engine="sglang", model="Qwen/Qwen2.5-7B-Instruct")] == 5
    )
    assert got[key(w, target="default/tgi-0", engine="tgi", model="bigcode/starcoder2-15b")] == 7.0
    assert got[key(w, target="default/triton-0", engine="triton", model="resnet50")] == 9.0
    kv = "tuneloop_inference_kv_cache_usage_ratio"
    assert got[key(kv, target="default/vllm-0", engine="vllm", model=llama)] == 0.4375
    assert not [k for k in got if k[0] == kv and ("target", "default/tgi-0") in k[1]]
    for name in ("default/vllm-0", "default/sgl-0", "default/tgi-0", "default/triton-0"):
        engine = name.split("/")[1].split("-")[0].replace("sgl", "sglang")
        assert got[key("tuneloop_inference_target_up", target=name, engine=engine)] == 1.0
    assert not [k for k in got if k[0] == "tuneloop_inference_scrape_failures_total"]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (lambda: "<html>oops</html>", "parse"),
        (lambda: "process_open_fds 3\n", "unrecognised"),
        (raise_(ConnectionRefusedError(111, "Connection refused")), "connection"),
        (raise_(TimeoutError("timed out")), "timeout"),
        (raise_(FetchError("http_status", "HTTP 500 from http://bad/metrics")), "http_status"),
        (raise_(RuntimeError("surprise")), "error"),
    ],
)
def test_a_bad_target_is_down_with_a_reason_and_the_others_are_untouched(failure, reason) -> None:
    targets = [
        InferenceTarget("good", "http://vllm/metrics"),
        InferenceTarget("bad", "http://bad/metrics"),
    ]
    collector = InferenceCollector(targets, fetch=fixture_fetch({"bad": failure}))
    got = samples(collector)
    assert got[key("tuneloop_inference_target_up", target="good", engine="vllm")] == 1.0
    assert got[key("tuneloop_inference_target_up", target="bad", engine="unknown")] == 0.0
    failures = key("tuneloop_inference_scrape_failures_total", target="bad", reason=reason)
    assert got[failures] == 1.0
    assert not [k for k in got if ("target", "bad") in k[1] and "requests" in k[0]]
    waiting = key(
        "tuneloop_inference_requests_waiting",
        target="good",
        engine="vllm",
        model="meta-llama/Llama-3.1-8B-Instruct",
    )
    assert got[waiting] == 3.0
    assert samples(collector)[failures] == 2.0  # counted again on the next collection
    (bad,) = [r for r in collector.last_results if r.target.name == "bad"]
    assert bad.reason == reason and bad.error


def test_all_targets_down_is_still_a_successful_collection() -> None:
    targets = [InferenceTarget(f"t{i}", f"http://t{i}/metrics") for i in range(3)]
    fetch = fixture_fetch({f"t{i}": raise_(ConnectionRefusedError()) for i in range(3)})
    got = samples(InferenceCollector(targets, fetch=fetch))
    ups = {k: v for k, v in got.items() if k[0] == "tuneloop_inference_target_up"}
    assert len(ups) == 3 and set(ups.values()) == {0.0}


def test_no_targets_yields_empty_families() -> None:
    families = InferenceCollector([], fetch=fixture_fetch()).scrape()
    assert families and all(not f.samples for f in families)


def test_explicit_engine_that_does_not_match_is_unrecognised() -> None:
    target = InferenceTarget("x", "http://tgi/metrics", engine="vllm")
    got = samples(InferenceCollector([target], fetch=fixture_fetch()))
    assert got[key("tuneloop_inference_target_up", target="x", engine="vllm")] == 0.0
    assert got[key("tuneloop_inference_scrape_failures_total", target="x", reason="unrecognised")]


def test_up_keeps_the_detected_engine_label_while_the_target_is_down() -> None:
    state = {"down": False}

    def body() -> str:
        if state["down"]:
            raise ConnectionRefusedError()
        return (FIXTURES / "sglang.metrics").read_text()

    collector = InferenceCollector(
        [InferenceTarget("s", "http://s/metrics")], fetch=fixture_fetch({"s": body})
    )
    assert samples(collector)[key("tuneloop_inference_target_up", target="s", engine="sglang")] == 1
    state["down"] = True
    assert samples(collector)[key("tuneloop_inference_target_up", target="s", engine="sglang")] == 0


def test_targets_callable_is_read_on_every_collection_and_counters_follow_targets() -> None:
    current = [
        InferenceTarget("a", "http://a/metrics"),
        InferenceTarget("b", "http://vllm/metrics"),
    ]
    fetch = fixture_fetch({"a": raise_(ConnectionRefusedError())})
    collector = InferenceCollector(lambda: current, fetch=fetch)
    assert key("tuneloop_inference_scrape_failures_total", target="a", reason="connection") in (
        samples(collector)
    )
    current = [InferenceTarget("b", "http://vllm/metrics")]
    got = samples(collector)
    assert not [k for k in got if ("target", "a") in k[1]]
    assert got[key("tuneloop_inference_target_up", target="b", engine="vllm")] == 1.0


def test_target_listing_failure_fails_the_collection_with_one_line() -> None:
    def broken() -> list[InferenceTarget]:
        raise OSError("config file unreadable")

    with pytest.raises(CollectorError, match="listing inference targets failed: config file"):
        InferenceCollector(broken, fetch=fixture_fetch()).scrape()


def test_duplicate_target_names_keep_the_first() -> None:
    targets = [
        InferenceTarget("x", "http://vllm/metrics"),
        InferenceTarget("x", "http://tgi/metrics"),
    ]
    got = samples(InferenceCollector(targets, fetch=fixture_fetch()))
    ups = [k for k in got if k[0] == "tuneloop_inference_target_up"]
    assert ups == [key("tuneloop_inference_target_up", target="x", engine="vllm")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "url": "http://a/metrics"}, "name"),
        ({"name": "a", "url": "ftp://a/metrics"}, "url must start with http"),
        ({"name": "a", "url": "http://a/metrics", "engine": "llamacpp"}, "engine must be one of"),
        ({"name": "a", "url": "http://a/metrics", "model": ""}, "model"),
    ],
)
def test_target_validation_names_the_field(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        InferenceTarget(**kwargs)


def test_collector_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        InferenceCollector([], timeout_s=0)
    with pytest.raises(ValueError, match="max_models"):
        InferenceCollector([], max_models=0)
    with pytest.raises(ValueError, match="deadline_s"):
        InferenceCollector([], deadline_s=-1)


def test_classify_maps_exceptions_to_bounded_reasons() -> None:
    assert classify(FetchError("made-up", "x")) == "error"
    assert classify(ConnectionResetError()) == "connection"


def test_every_family_is_in_the_catalog_with_its_labels() -> None:
    targets = [InferenceTarget("t", "http://triton/metrics"), InferenceTarget("b", "http://b/x")]
    fetch = fixture_fetch({"b": raise_(ConnectionRefusedError())})
    for family in InferenceCollector(targets, fetch=fetch).scrape():
        suffix = "_total" if family.type == "counter" else ""
        spec = catalog.get(family.name + suffix)
        assert spec.type == family.type
        for s in family.samples:
            assert s.name in spec.sample_names()
            assert tuple(k for k in s.labels if k != "le") == spec.labels


def test_golden_exposition() -> None:
    targets = [
        InferenceTarget("llm/vllm-0", "http://vllm/metrics"),
        InferenceTarget("llm/vllm-old", "http://vllm_legacy/metrics", engine="vllm"),
        InferenceTarget("llm/sglang-0", "http://sglang/metrics"),
        InferenceTarget("llm/tgi-0", "http://tgi/metrics", model="bigcode/starcoder2-15b"),
        InferenceTarget("llm/triton-0", "http://triton/metrics"),
        InferenceTarget("llm/broken", "http://broken/metrics"),
    ]
    collector = InferenceCollector(
        targets, fetch=fixture_fetch({"broken": lambda: "<html>502 Bad Gateway</html>"})
    )
    collector.refresh()
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    lines = sorted(
        line
        for line in text.splitlines()
        if line and not line.startswith("tuneloop_inference_scrape_duration_seconds{")
    )
    durations = [
        line for line in text.splitlines() if line.startswith("tuneloop_inference_scrape_duration")
    ]
    assert len(durations) == len(targets)
    assert all(float(line.rsplit(" ", 1)[1]) >= 0 for line in durations)
    golden = (FIXTURES / "golden.prom").read_text().splitlines()
    assert lines == sorted(line for line in golden if line)
