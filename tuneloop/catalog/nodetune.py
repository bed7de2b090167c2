"""Node-tuning (sysctl reconciler) status metrics."""

from tuneloop.catalog.base import MetricSpec, counter, gauge

SYSCTL_VALUE = gauge(
    "tuneloop_nodetune_sysctl_value",
    "Current value of an allowlisted sysctl; field is value, or min/default/max for tcp_[rw]mem.",
    "key",
    "field",
)
DESIRED_VALUE = gauge(
    "tuneloop_nodetune_desired_value",
    "Desired value of a sysctl in the last generation applied or attempted.",
    "key",
    "field",
)
CONGESTION_CONTROL = gauge(
    "tuneloop_nodetune_congestion_control_info",
    "Always 1; the current and desired TCP congestion control (state current or desired).",
    "state",
    "algorithm",
)
DESIRED_GENERATION = gauge(
    "tuneloop_nodetune_desired_generation", "Newest generation read from the desired-state file."
)
APPLIED_GENERATION = gauge(
    "tuneloop_nodetune_applied_generation",
    "Generation whose values were last verified on the node (absent after a baseline rollback).",
)
IN_SYNC = gauge(
    "tuneloop_nodetune_in_sync",
    "1 when every desired sysctl reads back as desired, 0 on drift or a failed apply.",
)
STATE = gauge(
    "tuneloop_nodetune_state",
    "Always 1; the reconciler's journal state (applied, applying, failed, rolled_back, empty).",
    "state",
)
FAILURES = counter(
    "tuneloop_nodetune_failures_total",
    "Failed applies by reason (validation, write, verify, rollback, interrupted).",
    "reason",
)
LAST_APPLY = gauge(
    "tuneloop_nodetune_last_apply_timestamp_seconds",
    "Unix time of the last successful apply.",
    unit="seconds",
)

SPECS: tuple[MetricSpec, ...] = (
    SYSCTL_VALUE,
    DESIRED_VALUE,
    CONGESTION_CONTROL,
    DESIRED_GENERATION,
    APPLIED_GENERATION,
    IN_SYNC,
    STATE,
    FAILURES,
    LAST_APPLY,
)
