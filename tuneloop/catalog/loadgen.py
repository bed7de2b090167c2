"""Client-side metrics of the lab's load generator: what a user of the balancer sees.

The tuner's built-in latency, throughput, request-rate and error signals read these names, so they
are a contract with :mod:`tuner.signals.prometheus`. Latency histograms observe successful
requests, and the e2e histogram also requests that timed out (at the time the client gave up);
every request is counted by ``outcome`` (``ok``, ``error``, ``timeout``, ``dropped`` when the
generator's in-flight cap was reached).
"""

from tuneloop.catalog.base import counter, gauge, histogram

LOADGEN_TTFT = histogram(
    "tuneloop_loadgen_ttft_seconds",
    "Time from sending a request to its first streamed token, seen by the client.",
    unit="seconds",
)
LOADGEN_ITL = histogram(
    "tuneloop_loadgen_itl_seconds",
    "Time between consecutive streamed tokens of one response, seen by the client.",
    unit="seconds",
)
LOADGEN_E2E = histogram(
    "tuneloop_loadgen_e2e_seconds",
    "Time from sending a request to the end of its stream, seen by the client.",
    unit="seconds",
)
LOADGEN_REQUESTS = counter(
    "tuneloop_loadgen_requests_total",
    "Requests finished, by outcome (ok, error, timeout, dropped).",
    "outcome",
)
LOADGEN_TOKENS = counter(
    "tuneloop_loadgen_tokens_total", "Streamed output tokens received by the client."
)
LOADGEN_IN_FLIGHT = gauge(
    "tuneloop_loadgen_in_flight_requests", "Requests sent and not yet finished."
)
LOADGEN_OFFERED_RATE = gauge(
    "tuneloop_loadgen_offered_requests_per_second",
    "Mean arrival rate of the open-loop (Poisson) load.",
    unit="requests_per_second",
)

SPECS = (
    LOADGEN_TTFT,
    LOADGEN_ITL,
    LOADGEN_E2E,
    LOADGEN_REQUESTS,
    LOADGEN_TOKENS,
    LOADGEN_IN_FLIGHT,
    LOADGEN_OFFERED_RATE,
)
