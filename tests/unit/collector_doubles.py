"""Collectors for scheduler and exporter tests: one that counts its scrapes, one that fails."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from agent.collectors.base import Collector


class Steady(Collector):
    name = "steady"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def scrape(self):
        self.calls += 1
        family = GaugeMetricFamily("tuneloop_test_value", "test", labels=["k"])
        family.add_metric(["a"], float(self.calls))
        return [family]


class Failing(Collector):
    name = "failing"

    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def scrape(self):
        if self.fail:
            raise RuntimeError("no such device")
        return [GaugeMetricFamily("tuneloop_test_ok", "test", value=1.0)]
