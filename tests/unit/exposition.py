"""Test helper: a collector's output as the text format, parsed back into a lookup table."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.collectors.base import Collector


def exported(collector: Collector) -> dict[tuple[str, ...], float]:
    """Refresh, render the exposition text, and parse it back: {(name, "k=v", ...): value}."""
    collector.refresh()
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, *(f"{k}={v}" for k, v in sorted(s.labels.items())))] = s.value
    return out
