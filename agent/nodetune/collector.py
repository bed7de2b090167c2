"""Node-tuning status as metrics: current and desired values, generations, failures.

The collector reads the reconciler's journal (so it reports what a separate ``nodetune apply``
or ``watch`` process did) and the live sysctls under the same procfs root. Keys missing on the
target (global keys inside a namespace) are skipped, not failed; an unreadable journal fails
the collection, since then the status cannot be told.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.collectors.base import Collector, CollectorError
from agent.nodetune import journal as journal_io
from agent.nodetune.allowlist import ALLOWLIST, SysctlValueError, numeric_fields
from agent.nodetune.journal import JournalError
from agent.nodetune.reconciler import canonical
from agent.nodetune.sysctl import SysctlError, SysctlFS
from tuneloop.catalog import nodetune as cat
from tuneloop.catalog.base import MetricSpec

CC_KEY = "net.ipv4.tcp_congestion_control"


def _family(spec: MetricSpec) -> GaugeMetricFamily | CounterMetricFamily:
    family = spec.family()
    assert isinstance(family, GaugeMetricFamily | CounterMetricFamily), spec.name
    return family


def _fields(key: str, text: str) -> list[tuple[str, float]]:
    try:
        return numeric_fields(key, text)
    except SysctlValueError:
        return []  # a value the kernel would not print; nothing honest to export


class NodetuneCollector(Collector):
    """Exports the reconciler's status; paths and namespace are constructor arguments."""

    name = "nodetune"

    def __init__(self, procfs: Path, journal_path: Path, *, netns: Path | None = None) -> None:
        super().__init__()
        self.fs = SysctlFS(Path(procfs), netns)
        self.journal_path = Path(journal_path)

    def _current(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for key in ALLOWLIST:
            try:
                if self.fs.exists(key):
                    values[key] = canonical(self.fs.read(key))
            except SysctlError:
                continue  # unreadable key: reported as absent, in_sync shows any drift
        return values

    def scrape(self) -> Iterable[Metric]:
        try:
            journal = journal_io.load(self.journal_path)
        except JournalError as exc:
            raise CollectorError(str(exc)) from exc
        current = self._current()
        if not current:
            raise CollectorError(f"no allowlisted sysctl readable under {self.fs.describe()}")

        value = _family(cat.SYSCTL_VALUE)
        desired = _family(cat.DESIRED_VALUE)
        cc = _family(cat.CONGESTION_CONTROL)
        for key, text in sorted(current.items()):
            if key == CC_KEY:
                cc.add_metric(["current", text], 1.0)
                continue
            for name, number in _fields(key, text):
                value.add_metric([key, name], number)
        for key, text in sorted(journal.desired.items()):
            if key == CC_KEY:
                cc.add_metric(["desired", text], 1.0)
                continue
            for name, number in _fields(key, text):
                desired.add_metric([key, name], number)
        yield from (value, desired, cc)

        if journal.desired_generation is not None:
            family = _family(cat.DESIRED_GENERATION)
            family.add_metric([], float(journal.desired_generation))
            yield family
        if journal.applied_generation is not None:
            family = _family(cat.APPLIED_GENERATION)
            family.add_metric([], float(journal.applied_generation))
            yield family
        in_sync = journal.state == "applied" and all(
            current.get(k) == v for k, v in journal.desired.items()
        )
        family = _family(cat.IN_SYNC)
        family.add_metric([], 1.0 if in_sync else 0.0)
        yield family
        family = _family(cat.STATE)
        family.add_metric([journal.state], 1.0)
        yield family
        family = _family(cat.FAILURES)
        for reason, count in sorted(journal.failures.items()):
            family.add_metric([reason], float(count))
        yield family
        if journal.last_apply_timestamp is not None:
            family = _family(cat.LAST_APPLY)
            family.add_metric([], float(journal.last_apply_timestamp))
            yield family
