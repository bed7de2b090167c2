"""Node-tuning (sysctl reconciler) status metrics."""

from agent.catalog.base import MetricSpec

SPECS: tuple[MetricSpec, ...] = ()
