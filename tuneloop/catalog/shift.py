"""Metrics the traffic shifter exports about each replica behind a balancer."""

from tuneloop.catalog.base import counter, gauge

SHIFT_ACTIVE = gauge(
    "tuneloop_shift_active",
    "1 while the replica's weight is below its baseline because its latency degraded.",
    "shift",
    "target",
)
SHIFT_WEIGHT = gauge(
    "tuneloop_shift_weight",
    "Balancer weight the shifter last set or read for the replica.",
    "shift",
    "target",
)
SHIFT_BASELINE_WEIGHT = gauge(
    "tuneloop_shift_baseline_weight",
    "The replica's baseline (tuned) weight that the shifter returns to.",
    "shift",
    "target",
)
SHIFT_P99_SMOOTHED = gauge(
    "tuneloop_shift_p99_smoothed_seconds",
    "The replica's P99 latency after exponential smoothing, as the shifter sees it.",
    "shift",
    "target",
    unit="seconds",
)
SHIFT_EVENTS = counter(
    "tuneloop_shift_events_total",
    "Weight changes by the shifter (shift, restore) and shifts a capacity guard blocked.",
    "shift",
    "target",
    "action",
)
SHIFT_ACTIVE_SINCE = gauge(
    "tuneloop_shift_active_since_timestamp_seconds",
    "Unix time the replica's current shift began; absent while it is at its baseline.",
    "shift",
    "target",
    unit="seconds",
)

SPECS = (
    SHIFT_ACTIVE,
    SHIFT_WEIGHT,
    SHIFT_BASELINE_WEIGHT,
    SHIFT_P99_SMOOTHED,
    SHIFT_EVENTS,
    SHIFT_ACTIVE_SINCE,
)
