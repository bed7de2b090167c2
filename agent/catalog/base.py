"""Metric specifications: the one source of truth for names, types, units, help and labels.

Collectors build their families through :func:`MetricSpec.family`, the dashboard, alert and
runbook generators read the same specs, so a renamed metric breaks a test instead of a panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
)

MetricType = Literal["gauge", "counter"]


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: its exposition name (counters end in ``_total``) and its labels."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""  # base unit as a word: "bytes", "seconds", "ratio", "celsius", "" if none

    def __post_init__(self) -> None:
        if not self.name.startswith("tuneloop_"):
            raise ValueError(f"metric {self.name!r} lacks the tuneloop_ prefix")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end in _total")

    def family(self) -> GaugeMetricFamily | CounterMetricFamily:
        """A new, empty metric family for this spec, ready for ``add_metric``."""
        if self.type == "counter":
            return CounterMetricFamily(self.name, self.help, labels=list(self.labels))
        return GaugeMetricFamily(self.name, self.help, labels=list(self.labels))


def gauge(name: str, help: str, *labels: str, unit: str = "") -> MetricSpec:
    """Shorthand for a gauge spec."""
    return MetricSpec(name, "gauge", help, tuple(labels), unit)


def counter(name: str, help: str, *labels: str, unit: str = "") -> MetricSpec:
    """Shorthand for a counter spec."""
    return MetricSpec(name, "counter", help, tuple(labels), unit)
