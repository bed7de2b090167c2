"""PrometheusSignals against a real Prometheus scraping an exporter whose values the test sets."""

from __future__ import annotations

import math
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.realprocs import prometheus as real
from tests.realprocs.common import free_port, wait_until
from tuner.signals.base import SignalError, SignalRef
from tuner.signals.prometheus import PrometheusSignals
from tuner.signals.settings import Scope, SignalSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not real.available(), reason="prometheus is not installed"),
]


class Exporter:
    """A tiny exporter on a free loopback port; the test sets its values."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge("tuneloop_test_value", "test value", registry=self.registry)
        self.per_pod = Gauge("tuneloop_test_per_pod", "per pod", ["pod"], registry=self.registry)
        self.ttft = Histogram(
            "tuneloop_inference_ttft_seconds",
            "ttft",
            ["target", "engine", "model"],
            buckets=(0.05, 0.1, 0.2, 0.4, 0.8),
            registry=self.registry,
        )
        self.requests = Counter(
            "tuneloop_inference_requests",
            "requests",
            ["target", "engine", "model", "outcome"],
            registry=self.registry,
        )
        self.loadgen_requests = Counter(
            "tuneloop_loadgen_requests", "requests", ["outcome"], registry=self.registry
        )
        self.port = free_port()
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    exporter = Exporter()
    exporter.gauge.set(0.25)
    exporter.per_pod.labels(pod="a").set(1)
    exporter.per_pod.labels(pod="b").set(2)
    try:
        with real.running_prometheus(
            tmp_path_factory.mktemp("prom"), [f"127.0.0.1:{exporter.port}"]
        ) as prom:
            real.wait_for_scrape(prom, "tuneloop_test_value")
            yield exporter, prom
    finally:
        exporter.close()


def test_instant_value(lab):
    _, prom = lab
    signals = PrometheusSignals(prom.url)
    assert signals.value(SignalRef(query="tuneloop_test_value"), 30) == pytest.approx(0.25)
    assert signals.value(SignalRef(query="sum(tuneloop_test_per_pod)"), 30) == pytest.approx(3)
    assert signals.value(SignalRef(query="scalar(tuneloop_test_value) * 4"), 30) == 1.0


def test_window_reaches_prometheus(lab):
    _, prom = lab
    signals = PrometheusSignals(prom.url)
    ref = SignalRef(query="max(max_over_time(tuneloop_test_value[$window]))")
    assert signals.value(ref, 5) == pytest.approx(0.25)


def test_empty_result_is_none_not_zero(lab):
    _, prom = lab
    assert PrometheusSignals(prom.url).value(SignalRef(query="tuneloop_no_such_metric"), 30) is None


def test_nan_is_none(lab):
    exporter, prom = lab
    signals = PrometheusSignals(prom.url)
    exporter.gauge.set(math.nan)
    try:
        wait_until(
            lambda: math.isnan(signals.instant("tuneloop_test_value")[0].points[0][1]),
            10,
            "a scraped NaN",
            step_s=0.2,
        )
        assert signals.value(SignalRef(query="tuneloop_test_value"), 30) is None
    finally:
        exporter.gauge.set(0.25)


def test_no_traffic_error_ratio_is_none_and_traffic_gives_a_ratio(lab):
    exporter, prom = lab
    signals = PrometheusSignals(prom.url, settings=SignalSettings(scope=Scope(model="a")))
    ref = SignalRef(signal="error_ratio")
    assert signals.value(ref, 5) is None  # no request series at all
    deadline = time.monotonic() + 20
    value = None
    while value is None and time.monotonic() < deadline:  # bounded: counters need two scrapes
        exporter.requests.labels("ns/a-0", "vllm", "a", "success").inc(9)
        exporter.requests.labels("ns/a-0", "vllm", "a", "error").inc(1)
        exporter.requests.labels("ns/b-0", "vllm", "b", "error").inc(50)  # another service
        time.sleep(0.5)
        value = signals.value(ref, 5)
    assert value is not None
    assert 0.0 < value < 0.5


def test_loadgen_source_reads_the_client_side_counters(lab):
    exporter, prom = lab
    signals = PrometheusSignals(prom.url, settings=SignalSettings(source="loadgen"))
    ref = SignalRef(signal="error_ratio")
    deadline = time.monotonic() + 20
    value = None
    while value is None and time.monotonic() < deadline:
        exporter.loadgen_requests.labels(outcome="ok").inc(3)
        exporter.loadgen_requests.labels(outcome="error").inc(1)
        time.sleep(0.5)
        value = signals.value(ref, 5)
    assert value is not None
    assert 0.1 < value < 0.5


def test_builtin_ttft_quantile_is_scoped_to_one_model(lab):
    exporter, prom = lab
    scoped = {
        m: PrometheusSignals(prom.url, settings=SignalSettings(scope=Scope(model=m)))
        for m in ("a", "b")
    }
    deadline = time.monotonic() + 20
    values: dict[str, float | None] = {"a": None, "b": None}
    while None in values.values() and time.monotonic() < deadline:
        for _ in range(20):
            exporter.ttft.labels("ns/a-0", "vllm", "a").observe(0.15)
            exporter.ttft.labels("ns/b-0", "sglang", "b").observe(0.6)
        time.sleep(0.5)
        values = {m: s.value(SignalRef(signal="p50_ttft_seconds"), 5) for m, s in scoped.items()}
    assert values["a"] is not None and 0.1 <= values["a"] <= 0.2  # (0.1, 0.2] bucket only
    assert values["b"] is not None and 0.4 <= values["b"] <= 0.8
    unscoped = PrometheusSignals(prom.url).value(SignalRef(signal="p99_ttft_seconds"), 5)
    assert unscoped is not None and unscoped > 0.4  # both services together


def test_several_series_need_aggregation(lab):
    _, prom = lab
    with pytest.raises(SignalError, match=r"2 series.*aggregate"):
        PrometheusSignals(prom.url).value(SignalRef(query="tuneloop_test_per_pod"), 30)


def test_bad_query_names_the_query_and_prometheus_error(lab):
    _, prom = lab
    with pytest.raises(SignalError, match=r"rejected query 'sum\(tuneloop_test_value'.*parse"):
        PrometheusSignals(prom.url, retries=0).value(SignalRef(query="sum(tuneloop_test_value"), 30)


def test_range_selector_without_function_is_an_error(lab):
    _, prom = lab
    with pytest.raises(SignalError, match=r"matrix"):
        PrometheusSignals(prom.url).instant("tuneloop_test_value[5s]")


def test_range_query(lab):
    _, prom = lab
    signals = PrometheusSignals(prom.url)
    end = time.time()
    series = signals.range("tuneloop_test_per_pod", end - 2, end, 1)
    assert {s.labels["pod"] for s in series} == {"a", "b"}
    assert all(v in (1.0, 2.0) for s in series for _, v in s.points)
    with pytest.raises(SignalError, match=r"bad range"):
        signals.range("up", end, end - 5, 1)


def test_prometheus_down_is_an_error_after_retries():
    signals = PrometheusSignals(f"http://127.0.0.1:{free_port()}", timeout_s=0.5, backoff_s=0.01)
    with pytest.raises(SignalError, match=r"after 3 attempts.*ConnectionError"):
        signals.value(SignalRef(query="up"), 30)
