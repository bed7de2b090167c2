"""NUMA metrics (sysfs node tree)."""

from agent.catalog.base import counter

NUMA_EVENTS = counter(
    "tuneloop_numa_events_total",
    "numastat page allocation events per NUMA node.",
    "node",
    "event",
)

SPECS = (NUMA_EVENTS,)
