"""Metric specifications: the one source of truth for names, types, units, help and labels.

Collectors build their families through :func:`MetricSpec.family`, the dashboard, alert and
runbook generators read the same specs, so a renamed metric breaks a test instead of a panel.

Labels a Kubernetes scrape owns (:data:`SCRAPE_LABELS`: the ServiceMonitor relabels the node
name into ``node`` and Prometheus adds ``instance`` and ``job``) collide with a metric's own
labels under ``honorLabels: true``: the metric's value wins and the scrape's is lost. A spec may
use one only when it declares, in ``scrape_meaning``, that it carries exactly the scrape's
meaning (the pod and namespace of a GPU process are Kubernetes pods and namespaces);
:func:`scrape_label_problems` lists every other use, and a unit test runs it over the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

MetricType = Literal["gauge", "counter", "histogram"]
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SCRAPE_LABELS = frozenset({"node", "namespace", "pod", "container", "instance", "job", "cluster"})


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: its exposition name (counters end in ``_total``) and its labels.

    A histogram's name is its family name; it is exposed as ``_bucket`` (with ``le``), ``_sum``
    and ``_count`` samples, listed by :meth:`sample_names`.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""  # base unit as a word: "bytes", "seconds", "ratio", "celsius", "" if none
    # Scrape-owned labels this metric uses in exactly the scrape's meaning (see the module doc).
    scrape_meaning: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.startswith("tuneloop_"):
            raise ValueError(f"metric {self.name!r} lacks the tuneloop_ prefix")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end in _total")
        if self.type == "histogram" and self.name.endswith((*HISTOGRAM_SUFFIXES, "_total")):
            raise ValueError(f"histogram {self.name!r} must not end in a sample suffix")
        if self.type == "histogram" and "le" in self.labels:
            raise ValueError(f"histogram {self.name!r} must not declare the le label")
        for label in self.scrape_meaning:
            if label not in self.labels or label not in SCRAPE_LABELS:
                raise ValueError(
                    f"metric {self.name!r}: scrape_meaning {label!r} must be one of its labels "
                    f"and one of {', '.join(sorted(SCRAPE_LABELS))}"
                )

    def sample_names(self) -> tuple[str, ...]:
        """The names of the samples this metric exposes (a histogram's three, else its own)."""
        if self.type == "histogram":
            return tuple(self.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        return (self.name,)

    def family(self) -> Any:
        """A new, empty metric family for this spec, ready for ``add_metric``.

        Typed ``Any`` because ``add_metric`` differs between the kinds (a histogram takes
        buckets and a sum); :meth:`histogram_family` is the typed way to a histogram.
        """
        if self.type == "histogram":
            return self.histogram_family()
        if self.type == "counter":
            return CounterMetricFamily(self.name, self.help, labels=list(self.labels))
        return GaugeMetricFamily(self.name, self.help, labels=list(self.labels))

    def histogram_family(self) -> HistogramMetricFamily:
        """A new, empty histogram family; ValueError when the spec is not a histogram."""
        if self.type != "histogram":
            raise ValueError(f"metric {self.name!r} is a {self.type}, not a histogram")
        return HistogramMetricFamily(self.name, self.help, labels=list(self.labels))


def scrape_label_problems(specs: Iterable[MetricSpec]) -> list[str]:
    """One line per metric label that a scrape owns and the metric does not declare."""
    return [
        f"{spec.name}: label {label!r} belongs to the scrape; rename it or declare it in "
        "scrape_meaning"
        for spec in specs
        for label in spec.labels
        if label in SCRAPE_LABELS and label not in spec.scrape_meaning
    ]


def gauge(
    name: str, help: str, *labels: str, unit: str = "", scrape_meaning: tuple[str, ...] = ()
) -> MetricSpec:
    """Shorthand for a gauge spec."""
    return MetricSpec(name, "gauge", help, tuple(labels), unit, scrape_meaning)


def counter(
    name: str, help: str, *labels: str, unit: str = "", scrape_meaning: tuple[str, ...] = ()
) -> MetricSpec:
    """Shorthand for a counter spec."""
    return MetricSpec(name, "counter", help, tuple(labels), unit, scrape_meaning)


def histogram(name: str, help: str, *labels: str, unit: str = "") -> MetricSpec:
    """Shorthand for a histogram spec (``add_metric(labels, buckets, sum_value)``)."""
    return MetricSpec(name, "histogram", help, tuple(labels), unit)
