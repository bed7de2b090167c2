"""Signals from Prometheus's HTTP API: instant and range queries, timeouts, bounded retries.

Decisions:
- ``$window`` in a query is replaced by a PromQL duration literal (``30s``, ``1500ms``), so
  queries read ``rate(x[$window])`` the way Grafana users write ``[$__rate_interval]``.
- Connection errors, timeouts and 5xx answers are retried ``retries`` times with a short backoff;
  a 400/422 (bad query, execution error) is not retried: it is a SignalError naming the query and
  carrying Prometheus's own error text.
- A measurement is one number. An instant vector with several series is an error: the query
  must aggregate (``sum``, ``max``, ``histogram_quantile(..., sum by (le) (...))``). An empty
  vector, NaN and ±Inf mean "no data" and give ``None``, never zero.

Built-in signals (``BUILTIN_QUERIES``) map to the metrics the lab exposes: client-side loadgen
histograms and counters, the normalised inference queue gauge, GPU utilisation and iperf3.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from tuner.signals.base import SignalError, SignalRef, Signals


def _quantile(q: str, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[$window])))"


_REQUESTS = "tuneloop_loadgen_requests_total"

#: PromQL templates for the built-in signal names. Latencies are client-side (what users see);
#: every template aggregates to a single series.
BUILTIN_QUERIES: Mapping[str, str] = {
    "p50_ttft_seconds": _quantile("0.5", "tuneloop_loadgen_ttft_seconds"),
    "p99_ttft_seconds": _quantile("0.99", "tuneloop_loadgen_ttft_seconds"),
    # Inter-token latency: the loadgen's per-token gap histogram.
    "p99_itl_seconds": _quantile("0.99", "tuneloop_loadgen_itl_seconds"),
    "p50_e2e_latency_seconds": _quantile("0.5", "tuneloop_loadgen_e2e_seconds"),
    "p99_e2e_latency_seconds": _quantile("0.99", "tuneloop_loadgen_e2e_seconds"),
    "throughput_tokens_per_second": "sum(rate(tuneloop_loadgen_tokens_total[$window]))",
    "request_rate": f"sum(rate({_REQUESTS}[$window]))",
    # Errors over all requests; "or vector(0)" keeps a clean run at 0 rather than empty, while
    # no traffic at all still gives 0/0 = NaN -> None.
    "error_ratio": (
        f'(sum(rate({_REQUESTS}{{outcome!="ok"}}[$window])) or vector(0))'
        f" / sum(rate({_REQUESTS}[$window]))"
    ),
    "queue_depth": "sum(avg_over_time(tuneloop_inference_requests_waiting[$window]))",
    "gpu_busy_ratio": "avg(avg_over_time(tuneloop_gpu_utilization_ratio[$window]))",
    # The slowest peer bounds a collective; min across peers of the last test in the window.
    "iperf3_throughput_bits_per_second": (
        "min(last_over_time(tuneloop_iperf3_throughput_bits_per_second[$window]))"
    ),
}


@dataclass(frozen=True)
class Series:
    """One series of a query result: its labels and (timestamp, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


def duration_literal(window_s: float) -> str:
    """A PromQL duration for ``window_s`` seconds: ``30s``, or ``1500ms`` for fractions."""
    if not math.isfinite(window_s) or window_s <= 0:
        raise SignalError(f"measurement window must be a positive number of seconds: {window_s!r}")
    millis = round(window_s * 1000)
    if millis == 0:
        raise SignalError(f"measurement window is shorter than 1ms: {window_s!r}")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def expression(ref: SignalRef, window_s: float) -> str:
    """The PromQL for ``ref`` with ``$window`` filled in."""
    if ref.signal is not None:
        if ref.signal not in BUILTIN_QUERIES:
            known = ", ".join(sorted(BUILTIN_QUERIES))
            raise SignalError(f"unknown signal {ref.signal!r} (known: {known})")
        template = BUILTIN_QUERIES[ref.signal]
    else:
        template = str(ref.query)
    return template.replace("$window", duration_literal(window_s))


def _number(raw: Any) -> float:
    return float(raw)  # Prometheus sends values as strings: "0.25", "NaN", "+Inf"


class PrometheusSignals(Signals):
    """Measurements from a Prometheus server at ``url``."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        retries: int = 2,
        *,
        backoff_s: float = 0.2,
        session: requests.Session | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._session = session or requests.Session()

    def _get(self, path: str, params: dict[str, str]) -> Any:
        query = params["query"]
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * attempt)
            try:
                reply = self._session.get(
                    f"{self.url}{path}", params=params, timeout=self.timeout_s
                )
            except requests.RequestException as err:
                last = f"{type(err).__name__}: {err}"
                continue
            if reply.status_code >= 500:
                last = f"HTTP {reply.status_code}: {_error_text(reply)}"
                continue
            if reply.status_code != 200:
                raise SignalError(
                    f"prometheus rejected query {query!r}: {_error_text(reply)}"
                    f" (HTTP {reply.status_code})"
                )
            try:
                body = reply.json()
            except ValueError:
                raise SignalError(
                    f"prometheus at {self.url} answered {query!r} with non-JSON"
                ) from None
            if body.get("status") != "success":
                raise SignalError(f"prometheus query {query!r} failed: {body.get('error')}")
            return body["data"]
        raise SignalError(
            f"prometheus at {self.url} did not answer {query!r} after "
            f"{self.retries + 1} attempts: {last}"
        )

    def instant(self, query: str, at: float | None = None) -> list[Series]:
        """An instant query; each result series has one point. Scalars come back as one series."""
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "scalar":
            return [Series({}, [(float(result[0]), _number(result[1]))])]
        if kind != "vector":
            raise SignalError(
                f"query {query!r} returned a {kind}, not an instant vector; "
                "wrap a range selector in a function such as rate() or avg_over_time()"
            )
        return [
            Series(dict(item["metric"]), [(float(item["value"][0]), _number(item["value"][1]))])
            for item in result
        ]

    def range(self, query: str, start: float, end: float, step_s: float) -> list[Series]:
        """A range query from ``start`` to ``end`` (epoch seconds) every ``step_s`` seconds."""
        if end < start or step_s <= 0:
            raise SignalError(f"bad range for {query!r}: start={start} end={end} step={step_s}")
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s}"}
        data = self._get("/api/v1/query_range", params)
        return [
            Series(dict(item["metric"]), [(float(t), _number(v)) for t, v in item["values"]])
            for item in data.get("result", [])
        ]

    def value(self, ref: SignalRef, window_s: float) -> float | None:
        query = expression(ref, window_s)
        series = self.instant(query)
        if not series:
            return None
        if len(series) > 1:
            shown = "; ".join(str(s.labels) for s in series[:3])
            raise SignalError(
                f"query {ref.describe()!r} returned {len(series)} series ({shown}); a signal is "
                "one number: aggregate it, e.g. sum(...), max(...) or avg(...)"
            )
        number = series[0].points[-1][1]
        return number if math.isfinite(number) else None


def _error_text(reply: requests.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text.strip()[:500]
    return str(body.get("error") or body)
