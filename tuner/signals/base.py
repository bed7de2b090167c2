"""The signals seam: one number per query, or ``None`` when there is no valid answer.

A query is PromQL (with ``$window`` replaced by the measurement window, e.g. ``[30s]``) or the name
of a built-in signal that each backend maps to its own expression. Empty results and NaN mean
"no traffic / no data": they are returned as ``None`` and make the measurement invalid. They are
never read as zero.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


class SignalError(Exception):
    """The backend could not be asked (unreachable, bad query, timeout after retries)."""


@dataclass(frozen=True)
class SignalRef:
    """Exactly one of ``query`` (PromQL) or ``signal`` (a built-in name)."""

    query: str | None = None
    signal: str | None = None

    def __post_init__(self) -> None:
        if (self.query is None) == (self.signal is None):
            raise ValueError("a signal needs exactly one of 'query' or 'signal'")

    def describe(self) -> str:
        return self.query if self.query is not None else f"signal:{self.signal}"


# Built-in signal names (latencies in seconds, rates per second). Each source answers a subset
# (tuner.signals.builtin): the fleet's server-side metrics by default, the lab's load generator or
# the balancer's exporter on request.
BUILTIN_SIGNALS = (
    "p50_ttft_seconds",
    "p99_ttft_seconds",
    "p50_itl_seconds",
    "p99_itl_seconds",
    "p50_e2e_latency_seconds",
    "p99_e2e_latency_seconds",
    "mean_e2e_latency_seconds",
    "mean_queue_time_seconds",
    "throughput_tokens_per_second",
    "request_rate",
    "error_ratio",
    "queue_depth",
    "kv_cache_usage_ratio",
    "gpu_busy_ratio",
    "iperf3_throughput_bytes_per_second",
)


class Signals(ABC):
    """A source of measurements."""

    @abstractmethod
    def value(self, ref: SignalRef, window_s: float) -> float | None:
        """The signal's value over the last ``window_s`` seconds; None if empty or NaN."""
