"""Signals from Prometheus's HTTP API: instant and range queries, timeouts, bounded retries.

Decisions:
- ``$window`` in a query is replaced by a PromQL duration literal (``30s``, ``1500ms``), so
  queries read ``rate(x[$window])`` the way Grafana users write ``[$__rate_interval]``.
- Connection errors, timeouts and 5xx answers are retried ``retries`` times through
  :func:`tuneloop.retry.retry` (jittered exponential backoff on the injected clock, so a
  simulated or test clock never really sleeps); a 400/422 (bad query, execution error) is not
  retried: it is a SignalError naming the query and carrying Prometheus's own error text.
- A measurement is one number. An instant vector with several series is an error: the query
  must aggregate (``sum``, ``max``, ``histogram_quantile(..., sum by (le) (...))``). An empty
  vector, NaN and ±Inf mean "no data" and give ``None``, never zero.

Built-in signal names become PromQL through :mod:`tuner.signals.builtin`, from the source and
scope in the experiment's :class:`~tuner.signals.settings.SignalSettings` (the fleet's
server-side metrics by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import requests

from tuneloop.clock import Clock, RealClock
from tuneloop.retry import Backoff, retry
from tuner.signals.base import SignalError, SignalRef, Signals
from tuner.signals.builtin import builtin_query
from tuner.signals.settings import SignalSettings, require_prometheus


class _Retryable(Exception):
    """A failure worth another attempt (connection, timeout, 5xx)."""


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


def expression(ref: SignalRef, window_s: float, settings: SignalSettings | None = None) -> str:
    """The PromQL for ``ref`` with ``$window`` filled in (built-ins from ``settings``)."""
    template = builtin_query(ref.signal, settings) if ref.signal is not None else str(ref.query)
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
        settings: SignalSettings | None = None,
        clock: Clock | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.settings = settings or SignalSettings()
        self._backoff = Backoff(base_s=backoff_s, cap_s=max(backoff_s, 5.0), attempts=retries + 1)
        self._clock: Clock = clock or RealClock()
        self._session = session or requests.Session()

    @classmethod
    def from_settings(
        cls, settings: SignalSettings, clock: Clock | None = None
    ) -> PrometheusSignals:
        """A client for the experiment's ``signals:`` section (the URL is required)."""
        return cls(
            require_prometheus(settings),
            timeout_s=settings.timeout_s,
            retries=settings.retries,
            settings=settings,
            clock=clock,
        )

    def _attempt(self, path: str, params: dict[str, str]) -> Any:
        query = params["query"]
        try:
            reply = self._session.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
        except requests.RequestException as err:
            raise _Retryable(f"{type(err).__name__}: {err}") from None
        if reply.status_code >= 500:
            raise _Retryable(f"HTTP {reply.status_code}: {_error_text(reply)}")
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

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            return retry(
                lambda: self._attempt(path, params),
                retry_on=(_Retryable,),
                backoff=self._backoff,
                clock=self._clock,
                what=f"prometheus query {params['query']!r}",
            )
        except _Retryable as last:
            raise SignalError(
                f"prometheus at {self.url} did not answer {params['query']!r} after "
                f"{self.retries + 1} attempts: {last}"
            ) from None

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
        query = expression(ref, window_s, self.settings)
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
