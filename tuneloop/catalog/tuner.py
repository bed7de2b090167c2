"""Metrics the tuner exports about its own work."""

from tuneloop.catalog.base import counter, gauge

TUNER_TRIALS = counter(
    "tuneloop_tuner_trials_total", "Trials finished, by outcome.", "experiment", "outcome"
)
TUNER_ROLLBACKS = counter(
    "tuneloop_tuner_rollbacks_total",
    "Rollbacks to the incumbent, by reason.",
    "experiment",
    "reason",
)
TUNER_BEST_OBJECTIVE = gauge(
    "tuneloop_tuner_best_objective", "Objective value of the incumbent configuration.", "experiment"
)
TUNER_KNOB_VALUE = gauge(
    "tuneloop_tuner_knob_value",
    "Value of each numeric knob as last applied or read by the tuner.",
    "experiment",
    "knob",
)
TUNER_LAST_TRIAL = gauge(
    "tuneloop_tuner_last_trial_timestamp_seconds",
    "Unix time the last trial finished.",
    "experiment",
    unit="seconds",
)

SPECS = (TUNER_TRIALS, TUNER_ROLLBACKS, TUNER_BEST_OBJECTIVE, TUNER_KNOB_VALUE, TUNER_LAST_TRIAL)
