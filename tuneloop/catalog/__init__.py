"""The catalog of every metric tuneloop exports, grouped by the part that exports it.

Each area module holds the specs its exporter uses and lists them in ``SPECS``. ``AREAS`` maps an
area name to its specs; ``ALL`` maps a metric name to its spec. Dashboards, alerts and runbooks are
generated from this catalog, and tests check that they name nothing outside it.
"""

from __future__ import annotations

from types import ModuleType

from tuneloop.catalog import (
    agent_health,
    bench,
    collector,
    gpu,
    gpu_signals,
    inference,
    loadgen,
    net,
    nodetune,
    numa,
    rdma,
    shift,
    tuner,
)
from tuneloop.catalog.base import MetricSpec, counter, gauge

_MODULES: dict[str, ModuleType] = {
    "collector": collector,
    "agent_health": agent_health,
    "gpu": gpu,
    "gpu_signals": gpu_signals,
    "numa": numa,
    "rdma": rdma,
    "net": net,
    "inference": inference,
    "bench": bench,
    "nodetune": nodetune,
    "tuner": tuner,
    "shift": shift,
    "loadgen": loadgen,
}

AREAS: dict[str, tuple[MetricSpec, ...]] = {area: mod.SPECS for area, mod in _MODULES.items()}


def _index() -> dict[str, MetricSpec]:
    index: dict[str, MetricSpec] = {}
    for specs in AREAS.values():
        for spec in specs:
            if spec.name in index:
                raise ValueError(f"metric {spec.name} is defined twice in the catalog")
            index[spec.name] = spec
    return index


ALL: dict[str, MetricSpec] = _index()


def get(name: str) -> MetricSpec:
    """The spec of one metric; KeyError names it when it is not in the catalog."""
    try:
        return ALL[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in the catalog") from None


__all__ = ["ALL", "AREAS", "MetricSpec", "counter", "gauge", "get"]
