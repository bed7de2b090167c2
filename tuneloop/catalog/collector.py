"""Self-metrics every collector reports, whatever it collects."""

from tuneloop.catalog.base import counter, gauge

COLLECTOR_SUCCESS = gauge(
    "tuneloop_collector_success", "1 if the collector's last collection succeeded.", "collector"
)
COLLECTOR_DURATION = gauge(
    "tuneloop_collector_duration_seconds",
    "Wall time of the collector's last collection.",
    "collector",
    unit="seconds",
)
COLLECTOR_LAST_SUCCESS = gauge(
    "tuneloop_collector_last_success_timestamp_seconds",
    "Unix time of the collector's last successful collection.",
    "collector",
    unit="seconds",
)
COLLECTOR_FAILURES = counter(
    "tuneloop_collector_failures_total",
    "Collections that failed or overran their deadline.",
    "collector",
    "reason",
)

SPECS = (COLLECTOR_SUCCESS, COLLECTOR_DURATION, COLLECTOR_LAST_SUCCESS, COLLECTOR_FAILURES)
