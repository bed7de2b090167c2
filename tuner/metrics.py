"""The tuner's own metrics (names from ``tuneloop.catalog.tuner``).

Decision: the controller serves them on ``/metrics`` over HTTP; a one-shot ``tuneloop tune`` (the
CronJob case) writes them with ``--metrics-file`` in node_exporter's textfile format, atomically,
for a node_exporter textfile collector or a sidecar to pick up. Nothing is pushed. Counters start
from the trial store's totals so a textfile written by successive runs keeps counting up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from tuneloop.catalog.tuner import (
    TUNER_BEST_OBJECTIVE,
    TUNER_KNOB_VALUE,
    TUNER_LAST_TRIAL,
    TUNER_ROLLBACKS,
    TUNER_TRIALS,
)
from tuner.appliers.base import Value
from tuner.store import TrialStore

OUTCOMES = ("done", "invalid", "infeasible", "rolled_back")


class TunerMetrics(Collector):
    """A custom collector holding the tuner's counters and gauges."""

    def __init__(self) -> None:
        self.trials: dict[tuple[str, str], float] = {}
        self.rollbacks: dict[tuple[str, str], float] = {}
        self.best: dict[str, float] = {}
        self.knobs: dict[tuple[str, str], float] = {}
        self.last_trial: dict[str, float] = {}

    def load(self, store: TrialStore, experiment: str) -> None:
        """Start counters from what the store already holds for ``experiment``."""
        for trial in store.trials(experiment):
            if trial.state in OUTCOMES and trial.kind in ("trial", "incumbent"):
                self.trial(experiment, trial.state, trial.finished_at)
            if trial.rolled_back:
                reason = (trial.measurements or {}).get("rollback_reason", "unknown")
                self.rollback(experiment, str(reason))
        inc = store.incumbent(experiment)
        if inc is not None:
            self.best[experiment] = inc[1]

    def trial(self, experiment: str, outcome: str, at: float | None = None) -> None:
        key = (experiment, outcome)
        self.trials[key] = self.trials.get(key, 0.0) + 1
        if at is not None:
            self.last_trial[experiment] = max(at, self.last_trial.get(experiment, 0.0))

    def rollback(self, experiment: str, reason: str) -> None:
        key = (experiment, reason)
        self.rollbacks[key] = self.rollbacks.get(key, 0.0) + 1

    def set_best(self, experiment: str, value: float) -> None:
        self.best[experiment] = value

    def set_knobs(self, experiment: str, values: Mapping[str, Value]) -> None:
        for name, value in values.items():
            if isinstance(value, int | float):
                self.knobs[(experiment, name)] = float(value)

    def collect(self) -> Iterator[Metric]:
        fams = [
            TUNER_TRIALS.family(),
            TUNER_ROLLBACKS.family(),
            TUNER_BEST_OBJECTIVE.family(),
            TUNER_KNOB_VALUE.family(),
            TUNER_LAST_TRIAL.family(),
        ]
        for (exp, outcome), v in sorted(self.trials.items()):
            fams[0].add_metric([exp, outcome], v)
        for (exp, reason), v in sorted(self.rollbacks.items()):
            fams[1].add_metric([exp, reason], v)
        for exp, v in sorted(self.best.items()):
            fams[2].add_metric([exp], v)
        for (exp, knob), v in sorted(self.knobs.items()):
            fams[3].add_metric([exp, knob], v)
        for exp, v in sorted(self.last_trial.items()):
            fams[4].add_metric([exp], v)
        yield from fams

    def registry(self) -> CollectorRegistry:
        reg = CollectorRegistry(auto_describe=False)
        reg.register(self)
        return reg

    def write_textfile(self, path: str | Path) -> None:
        """Write the textfile format atomically (a temp file renamed into place)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry())

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` from a background thread."""
        start_http_server(port, addr=addr, registry=self.registry())
