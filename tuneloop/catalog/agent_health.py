"""The agent's health beside each collection: host files it could not read."""

from tuneloop.catalog.base import counter

COLLECTOR_READ_ERRORS = counter(
    "tuneloop_collector_read_errors_total",
    "Host files (sysfs, procfs) a collector skipped, by reason: missing, not_regular (a FIFO, "
    "device or socket in place of a file), too_large, unreadable, malformed, empty.",
    "collector",
    "reason",
)

SPECS = (COLLECTOR_READ_ERRORS,)
