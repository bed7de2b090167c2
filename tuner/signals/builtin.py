"""PromQL for the built-in signal names, per source, scoped to one service.

Sources (see :mod:`tuner.signals.settings`):

- ``fleet`` (default): the agent's normalised server-side metrics, the same for vLLM, SGLang, TGI
  and Triton: latency quantiles from ``tuneloop_inference_{ttft,inter_token_latency,
  e2e_latency}_seconds``, tokens from ``..._generation_tokens_total``, requests and errors from
  ``..._requests_total{outcome}`` (``success``, ``error``, ``aborted``), queue and KV cache from
  the gauges. Server-side latency leaves out the network and the balancer; it is what every
  cluster has, and the balancer's own view is one source away.
- ``loadgen``: the lab's load generator (client-side histograms, ``tuneloop_loadgen_*``); the lab
  has one load generator, so the service scope does not apply to its series.
- ``haproxy``: HAProxy's Prometheus exporter per backend (``proxy`` label): request rate, 5xx
  ratio, queue, and HAProxy's mean total and queue times (HAProxy averages those over the last
  1,024 requests; the window then averages the samples). HAProxy keeps no histograms, so it
  answers no quantile; its averages read 0 before any request, so they are gated on traffic in
  the window (no traffic gives no answer, never a zero latency).

GPU busy and iperf3 throughput come from the agent on every source. GPU busy is scoped to the
nodes that run the scoped service (``and on (node)`` with the service's running-requests gauge),
iperf3 to ``scope.node``. KV-cache use is the fullest replica's (``max``): the fullest cache is the
one that preempts. Every template aggregates to one series.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tuner.signals.base import SignalError
from tuner.signals.settings import Scope, SignalSettings

Template = Callable[[Scope], str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def service_matchers(scope: Scope) -> list[str]:
    """Label matchers for the agent's ``tuneloop_inference_*`` series."""
    out = []
    if scope.model is not None:
        out.append(f'model="{_escape(scope.model)}"')
    if scope.target is not None:
        out.append(f'target=~"{_escape(scope.target)}"')
    if scope.namespace is not None:
        out.append(f'target=~"(?:{_escape(scope.namespace)})/.*"')
    if scope.node is not None:
        out.append(f'node=~"{_escape(scope.node)}"')
    return out


def _node_matchers(scope: Scope) -> list[str]:
    return [f'node=~"{_escape(scope.node)}"'] if scope.node is not None else []


def _backend_matchers(scope: Scope) -> list[str]:
    return [f'proxy=~"{_escape(scope.backend)}"'] if scope.backend is not None else []


def selector(metric: str, matchers: list[str]) -> str:
    """``metric{a="b",c=~"d"}``, or the bare name without matchers."""
    return f"{metric}{{{','.join(matchers)}}}" if matchers else metric


def _quantile(q: str, histogram: str, matchers: list[str]) -> str:
    series = selector(f"{histogram}_bucket", matchers)
    return f"histogram_quantile({q}, sum by (le) (rate({series}[$window])))"


def _mean(histogram: str, matchers: list[str]) -> str:
    total = selector(f"{histogram}_sum", matchers)
    count = selector(f"{histogram}_count", matchers)
    return f"sum(rate({total}[$window])) / sum(rate({count}[$window]))"


def _ratio(counter: str, matchers: list[str], bad: str) -> str:
    """Bad over all; ``or vector(0)`` keeps a clean run at 0, no traffic stays 0/0 = NaN."""
    failed = selector(counter, [*matchers, bad])
    every = selector(counter, matchers)
    return f"(sum(rate({failed}[$window])) or vector(0)) / sum(rate({every}[$window]))"


_INF = "tuneloop_inference_"


def _gpu_busy(scope: Scope) -> str:
    gpu = selector("tuneloop_gpu_utilization_ratio", _node_matchers(scope))
    inner = f"avg_over_time({gpu}[$window])"
    service = service_matchers(scope)
    if any(not m.startswith("node=") for m in service):
        running = selector(f"{_INF}requests_running", service)
        inner = f"{inner} and on (node) {running}"
    return f"avg({inner})"


def _iperf3(scope: Scope) -> str:
    series = selector("tuneloop_iperf3_throughput_bytes_per_second", _node_matchers(scope))
    # the slowest peer bounds a collective: min across peers of the last test in the window
    return f"min(last_over_time({series}[$window]))"


_COMMON: dict[str, Template] = {
    "gpu_busy_ratio": _gpu_busy,
    "iperf3_throughput_bytes_per_second": _iperf3,
}


def _fleet(q: str, hist: str) -> Template:
    return lambda s: _quantile(q, f"{_INF}{hist}", service_matchers(s))


FLEET: dict[str, Template] = {
    "p50_ttft_seconds": _fleet("0.5", "ttft_seconds"),
    "p99_ttft_seconds": _fleet("0.99", "ttft_seconds"),
    "p50_itl_seconds": _fleet("0.5", "inter_token_latency_seconds"),
    "p99_itl_seconds": _fleet("0.99", "inter_token_latency_seconds"),
    "p50_e2e_latency_seconds": _fleet("0.5", "e2e_latency_seconds"),
    "p99_e2e_latency_seconds": _fleet("0.99", "e2e_latency_seconds"),
    "mean_e2e_latency_seconds": lambda s: _mean(f"{_INF}e2e_latency_seconds", service_matchers(s)),
    "throughput_tokens_per_second": lambda s: (
        f"sum(rate({selector(f'{_INF}generation_tokens_total', service_matchers(s))}[$window]))"
    ),
    "request_rate": lambda s: (
        f"sum(rate({selector(f'{_INF}requests_total', service_matchers(s))}[$window]))"
    ),
    "error_ratio": lambda s: _ratio(
        f"{_INF}requests_total", service_matchers(s), 'outcome!="success"'
    ),
    "queue_depth": lambda s: (
        f"sum(avg_over_time({selector(f'{_INF}requests_waiting', service_matchers(s))}[$window]))"
    ),
    "kv_cache_usage_ratio": lambda s: (
        "max(avg_over_time("
        f"{selector(f'{_INF}kv_cache_usage_ratio', service_matchers(s))}[$window]))"
    ),
    **_COMMON,
}

_LG = "tuneloop_loadgen_"


def _loadgen(q: str, hist: str) -> Template:
    return lambda s: _quantile(q, f"{_LG}{hist}", [])


LOADGEN: dict[str, Template] = {
    "p50_ttft_seconds": _loadgen("0.5", "ttft_seconds"),
    "p99_ttft_seconds": _loadgen("0.99", "ttft_seconds"),
    "p50_itl_seconds": _loadgen("0.5", "itl_seconds"),
    "p99_itl_seconds": _loadgen("0.99", "itl_seconds"),
    "p50_e2e_latency_seconds": _loadgen("0.5", "e2e_seconds"),
    "p99_e2e_latency_seconds": _loadgen("0.99", "e2e_seconds"),
    "mean_e2e_latency_seconds": lambda s: _mean(f"{_LG}e2e_seconds", []),
    "throughput_tokens_per_second": lambda s: f"sum(rate({_LG}tokens_total[$window]))",
    "request_rate": lambda s: f"sum(rate({_LG}requests_total[$window]))",
    "error_ratio": lambda s: _ratio(f"{_LG}requests_total", [], 'outcome!="ok"'),
    # the server-side gauges: the load generator has no view of queues or caches
    "queue_depth": FLEET["queue_depth"],
    "kv_cache_usage_ratio": FLEET["kv_cache_usage_ratio"],
    **_COMMON,
}

_HA = "haproxy_backend_"


def _ha(metric: str, s: Scope) -> str:
    return selector(f"{_HA}{metric}", _backend_matchers(s))


def _ha_average(metric: str) -> Template:
    """A HAProxy mean time, answered only when the backend had requests in the window."""
    return lambda s: (
        f"max(avg_over_time({_ha(metric, s)}[$window]))"
        f" and on () (sum(rate({_ha('http_requests_total', s)}[$window])) > 0)"
    )


HAPROXY: dict[str, Template] = {
    "request_rate": lambda s: f"sum(rate({_ha('http_requests_total', s)}[$window]))",
    "error_ratio": lambda s: _ratio(
        f"{_HA}http_responses_total", _backend_matchers(s), 'code="5xx"'
    ),
    "queue_depth": lambda s: f"sum(avg_over_time({_ha('current_queue', s)}[$window]))",
    "mean_e2e_latency_seconds": _ha_average("total_time_average_seconds"),
    "mean_queue_time_seconds": _ha_average("queue_time_average_seconds"),
    **_COMMON,
}

SOURCES: Mapping[str, Mapping[str, Template]] = {
    "fleet": FLEET,
    "loadgen": LOADGEN,
    "haproxy": HAPROXY,
}


def builtin_query(name: str, settings: SignalSettings | None = None) -> str:
    """The PromQL template (with ``$window``) for built-in ``name`` from the settings' source."""
    settings = settings or SignalSettings()
    table = SOURCES.get(settings.source)
    if table is None:
        raise SignalError(
            f"unknown signal source {settings.source!r} (known: {', '.join(SOURCES)})"
        )
    template = table.get(name)
    if template is None:
        everywhere = {n for t in SOURCES.values() for n in t}
        if name not in everywhere:
            raise SignalError(f"unknown signal {name!r} (known: {', '.join(sorted(everywhere))})")
        raise SignalError(
            f"signal {name!r} is not available from source {settings.source} "
            f"(it answers: {', '.join(sorted(table))}); use another source or a PromQL query"
        )
    return template(settings.scope)
