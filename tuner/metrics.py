"""The tuner's own metrics (names, help and labels from ``tuneloop.catalog.tuner``).

Decision: the metrics are prometheus_client's own ``Counter`` and ``Gauge`` (thread-safe: the
controller serves ``/metrics`` from a background thread while its loops update them) in a
:class:`CollectorRegistry` of their own, never the global one. The ``_created`` series the
client adds to counters are left out of the exposition: they are not in the catalog, and
nothing reads them. The controller serves them on ``/metrics`` over HTTP; a one-shot ``tuneloop
tune`` (the CronJob case) writes them with ``--metrics-file`` in node_exporter's textfile format,
atomically. Nothing is pushed. Counters start from the trial store's totals so a textfile written
by successive runs keeps counting up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    write_to_textfile,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from tuneloop.catalog.base import MetricSpec
from tuneloop.catalog.tuner import (
    TUNER_BEST_OBJECTIVE,
    TUNER_KNOB_VALUE,
    TUNER_LAST_TRIAL,
    TUNER_ROLLBACKS,
    TUNER_TRIALS,
)
from tuner.appliers.base import Value
from tuner.store import TrialStore
from tuner.trial_state import TrialKind, TrialState

# Outcomes counted in tuneloop_tuner_trials_total, and the kinds of trial that count.
OUTCOMES = frozenset(
    {TrialState.DONE, TrialState.INVALID, TrialState.INFEASIBLE, TrialState.ROLLED_BACK}
)
COUNTED_KINDS = frozenset({TrialKind.TRIAL, TrialKind.INCUMBENT, TrialKind.CHALLENGER})
UNKNOWN_REASON = "unknown"


def _counter(spec: MetricSpec, registry: CollectorRegistry) -> Counter:
    return Counter(spec.name, spec.help, spec.labels, registry=registry)


def _gauge(spec: MetricSpec, registry: CollectorRegistry) -> Gauge:
    return Gauge(spec.name, spec.help, spec.labels, registry=registry)


class TunerMetrics(Collector):
    """The tuner's counters and gauges; also a collector, to join another registry."""

    def __init__(self) -> None:
        self._registry = CollectorRegistry(auto_describe=True)
        self.trials = _counter(TUNER_TRIALS, self._registry)
        self.rollbacks = _counter(TUNER_ROLLBACKS, self._registry)
        self.best = _gauge(TUNER_BEST_OBJECTIVE, self._registry)
        self.knobs = _gauge(TUNER_KNOB_VALUE, self._registry)
        self.last_trial = _gauge(TUNER_LAST_TRIAL, self._registry)

    def load(self, store: TrialStore, experiment: str) -> None:
        """Start counters from what the store already holds for ``experiment``."""
        for trial in store.trials(experiment):
            if trial.state in OUTCOMES and trial.kind in COUNTED_KINDS:
                self.trial(experiment, trial.state, trial.finished_at)
            if trial.rolled_back:
                reason = (trial.measurements or {}).get("rollback_reason", UNKNOWN_REASON)
                self.rollback(experiment, str(reason))
        inc = store.incumbent(experiment)
        if inc is not None:
            self.set_best(experiment, inc[1])

    def trial(self, experiment: str, outcome: str, at: float | None = None) -> None:
        self.trials.labels(experiment, str(outcome)).inc()
        if at is not None:
            last = self.value(TUNER_LAST_TRIAL.name, experiment=experiment) or 0.0
            self.last_trial.labels(experiment).set(max(at, last))

    def rollback(self, experiment: str, reason: str) -> None:
        self.rollbacks.labels(experiment, reason).inc()

    def set_best(self, experiment: str, value: float) -> None:
        self.best.labels(experiment).set(value)

    def set_knobs(self, experiment: str, values: Mapping[str, Value]) -> None:
        for name, value in values.items():
            if isinstance(value, int | float):
                self.knobs.labels(experiment, name).set(float(value))

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value (tests, status output), or None when it is not exported."""
        return self._registry.get_sample_value(name, labels)

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family

    def registry(self) -> CollectorRegistry:
        """A registry exposing exactly these metrics (no ``_created`` series)."""
        reg = CollectorRegistry(auto_describe=False)
        reg.register(self)
        return reg

    def write_textfile(self, path: str | Path) -> None:
        """Write the textfile format atomically (a temp file renamed into place)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry())
