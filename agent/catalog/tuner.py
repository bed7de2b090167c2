"""Metrics the tuner exports about its own work."""

from agent.catalog.base import counter, gauge

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

SPECS = (TUNER_TRIALS, TUNER_ROLLBACKS, TUNER_BEST_OBJECTIVE)
