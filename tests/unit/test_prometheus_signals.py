"""Query rendering and retries for PrometheusSignals (HTTP is tested against a real Prometheus)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tuner.signals.base import BUILTIN_SIGNALS, SignalError, SignalRef
from tuner.signals.builtin import SOURCES, builtin_query
from tuner.signals.prometheus import PrometheusSignals, duration_literal, expression
from tuner.signals.settings import Scope, SignalSettings

LLAMA = SignalSettings(scope=Scope(model="llama-8b", namespace="prod", node="gpu-.*"))


@pytest.mark.parametrize(
    ("seconds", "literal"),
    [(30, "30s"), (30.0, "30s"), (1.5, "1500ms"), (0.25, "250ms"), (600, "600s")],
)
def test_duration_literal(seconds, literal):
    assert duration_literal(seconds) == literal


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), 0.0001])
def test_bad_windows_are_errors(bad):
    with pytest.raises(SignalError, match=r"window"):
        duration_literal(bad)


def test_every_builtin_name_is_answered_by_some_source_and_every_template_aggregates():
    answered = {name for table in SOURCES.values() for name in table}
    assert answered == set(BUILTIN_SIGNALS)
    for source, table in SOURCES.items():
        for name in table:
            query = builtin_query(name, SignalSettings(source=source, scope=_scope_for(source)))
            assert "$window" in query, (source, name)
            head = query.lstrip("(").split("(")[0]
            assert head in {"histogram_quantile", "sum", "avg", "min", "max"}, (source, name)


def _scope_for(source: str) -> Scope:
    return Scope(backend="llm") if source == "haproxy" else LLAMA.scope


def test_fleet_is_the_default_source_and_reads_the_agents_histograms():
    assert expression(SignalRef(signal="p99_ttft_seconds"), 30) == (
        "histogram_quantile(0.99, sum by (le) (rate(tuneloop_inference_ttft_seconds_bucket[30s])))"
    )
    itl = expression(SignalRef(signal="p50_itl_seconds"), 30)
    assert "tuneloop_inference_inter_token_latency_seconds_bucket" in itl
    assert "loadgen" not in " ".join(builtin_query(n, SignalSettings()) for n in SOURCES["fleet"])


def test_scope_narrows_every_fleet_series_to_one_service():
    query = expression(SignalRef(signal="p99_e2e_latency_seconds"), 30, LLAMA)
    assert query == (
        "histogram_quantile(0.99, sum by (le) (rate(tuneloop_inference_e2e_latency_seconds_bucket"
        '{model="llama-8b",target=~"(?:prod)/.*",node=~"gpu-.*"}[30s])))'
    )
    for name in ("request_rate", "throughput_tokens_per_second", "queue_depth", "error_ratio"):
        assert 'model="llama-8b"' in builtin_query(name, LLAMA), name


def test_error_ratio_counts_every_outcome_but_success_and_keeps_no_traffic_as_nan():
    query = expression(SignalRef(signal="error_ratio"), 45, SignalSettings(scope=Scope(model="m")))
    assert query == (
        '(sum(rate(tuneloop_inference_requests_total{model="m",outcome!="success"}[45s]))'
        ' or vector(0)) / sum(rate(tuneloop_inference_requests_total{model="m"}[45s]))'
    )


def test_gpu_busy_is_limited_to_nodes_that_serve_the_scoped_model():
    query = builtin_query("gpu_busy_ratio", SignalSettings(scope=Scope(model="m")))
    assert query == (
        "avg(avg_over_time(tuneloop_gpu_utilization_ratio[$window]) and on (node) "
        'tuneloop_inference_requests_running{model="m"})'
    )
    only_node = builtin_query("gpu_busy_ratio", SignalSettings(scope=Scope(node="n1")))
    assert only_node == 'avg(avg_over_time(tuneloop_gpu_utilization_ratio{node=~"n1"}[$window]))'


def test_iperf3_reads_bytes_per_second_of_the_slowest_peer():
    query = builtin_query("iperf3_throughput_bytes_per_second", SignalSettings())
    assert query == "min(last_over_time(tuneloop_iperf3_throughput_bytes_per_second[$window]))"


def test_label_values_are_escaped():
    query = builtin_query("request_rate", SignalSettings(scope=Scope(model='a"b\\c')))
    assert 'model="a\\"b\\\\c"' in query


def test_loadgen_source_keeps_the_client_side_view():
    settings = SignalSettings(source="loadgen")
    assert expression(SignalRef(signal="p99_ttft_seconds"), 30, settings) == (
        "histogram_quantile(0.99, sum by (le) (rate(tuneloop_loadgen_ttft_seconds_bucket[30s])))"
    )
    assert 'outcome!="ok"' in builtin_query("error_ratio", settings)


def test_haproxy_source_reads_the_backend_and_gates_averages_on_traffic():
    settings = SignalSettings(source="haproxy", scope=Scope(backend="llm"))
    assert builtin_query("queue_depth", settings) == (
        'sum(avg_over_time(haproxy_backend_current_queue{proxy=~"llm"}[$window]))'
    )
    mean = builtin_query("mean_e2e_latency_seconds", settings)
    assert mean.startswith(
        'max(avg_over_time(haproxy_backend_total_time_average_seconds{proxy=~"llm"}[$window]))'
    )
    assert mean.endswith(
        'and on () (sum(rate(haproxy_backend_http_requests_total{proxy=~"llm"}[$window])) > 0)'
    )
    assert 'code="5xx"' in builtin_query("error_ratio", settings)


def test_a_source_without_the_signal_says_what_it_answers():
    settings = SignalSettings(source="haproxy", scope=Scope(backend="llm"))
    with pytest.raises(SignalError, match=r"not available from source haproxy.*request_rate"):
        builtin_query("p99_ttft_seconds", settings)
    with pytest.raises(SignalError, match=r"not available from source fleet"):
        builtin_query("mean_queue_time_seconds", SignalSettings())


def test_unknown_signal_names_the_known_ones():
    with pytest.raises(SignalError, match=r"unknown signal 'p42'.*p99_ttft_seconds"):
        expression(SignalRef(signal="p42"), 30)


def test_window_is_substituted_in_queries():
    assert expression(SignalRef(query="max(rate(x[$window]))"), 2.5) == "max(rate(x[2500ms]))"


def test_negative_retries_rejected():
    with pytest.raises(ValueError, match=r"retries"):
        PrometheusSignals("http://127.0.0.1:9", retries=-1)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


class Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self._body = body
        self.text = str(body)

    def json(self) -> Any:
        return self._body


class ScriptedSession:
    """Answers each GET with the next scripted reply (or raises it)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls = 0

    def get(self, url: str, params: Any = None, timeout: float = 0) -> Any:
        self.calls += 1
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


OK = Reply(
    200,
    {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "0.5"]}]},
    },
)


def _client(script: list[Any], retries: int = 2) -> tuple[PrometheusSignals, Any, FakeClock]:
    session, clock = ScriptedSession(script), FakeClock()
    client = PrometheusSignals(
        "http://prom:9090",
        retries=retries,
        clock=clock,
        session=session,  # type: ignore[arg-type]
    )
    return client, session, clock


def test_retries_go_through_the_clock_not_a_real_sleep():
    client, session, clock = _client(
        [requests.ConnectionError("refused"), Reply(503, {"error": "busy"}), OK]
    )
    assert client.value(SignalRef(query="x"), 30) == 0.5
    assert session.calls == 3
    assert len(clock.slept) == 2


def test_retries_exhausted_name_the_attempts_and_the_last_error():
    client, session, _ = _client([Reply(502, {"error": "bad gateway"})] * 3)
    with pytest.raises(SignalError, match=r"after 3 attempts: HTTP 502: bad gateway"):
        client.value(SignalRef(query="x"), 30)
    assert session.calls == 3


def test_a_rejected_query_is_not_retried():
    client, session, clock = _client([Reply(400, {"error": "parse error"})])
    with pytest.raises(SignalError, match=r"rejected query 'x': parse error \(HTTP 400\)"):
        client.value(SignalRef(query="x"), 30)
    assert session.calls == 1 and clock.slept == []


def test_nan_and_empty_are_none_never_zero():
    nan = Reply(
        200,
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "NaN"]}]},
        },
    )
    empty = Reply(200, {"status": "success", "data": {"resultType": "vector", "result": []}})
    client, _, _ = _client([nan, empty])
    assert client.value(SignalRef(query="x"), 30) is None
    assert client.value(SignalRef(query="x"), 30) is None


def test_client_from_settings_uses_their_source():
    from tuner.signals.settings import parse_signal_settings

    settings = parse_signal_settings(
        {"prometheus": "http://prom:9090/", "source": "haproxy", "scope": {"backend": "llm"}}
    )
    client = PrometheusSignals.from_settings(settings)
    assert client.url == "http://prom:9090"
    assert client.settings.source == "haproxy"
