"""Tuner: trials and outcomes, objective over time, knob values, rollbacks, traffic shifts."""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.panels import dashboard as make
from tuneloop.generate.panels import label_variable, panel, rows

S = 'experiment=~"$experiment"'
H = 'shift=~"$shift"'
T = "{{shift}} {{target}}"

annotations = [
    {
        "datasource": "${datasource}",
        "enable": True,
        "iconColor": "rgba(255, 152, 48, 1)",
        "name": "Trials",
        "expr": f"changes(tuneloop_tuner_trials_total{{{S}}}[2m]) > 0",
        "step": "60s",
        "titleFormat": "Trial finished: {{experiment}} {{outcome}}",
        "tagKeys": "experiment,outcome",
    },
    {
        "datasource": "${datasource}",
        "enable": True,
        "iconColor": "rgba(242, 73, 92, 1)",
        "name": "Knob changes",
        "expr": f"changes(tuneloop_tuner_knob_value{{{S}}}[2m]) > 0",
        "step": "60s",
        "titleFormat": "Knob changed: {{experiment}} {{knob}}",
        "tagKeys": "experiment,knob",
    },
]

dashboard = make(
    "tuneloop / Tuner",
    "What the tuner tried, what it kept, and what it rolled back.",
    [
        label_variable("experiment", "tuneloop_tuner_trials_total"),
        label_variable("shift", "tuneloop_shift_weight"),
    ],
    rows(
        (
            "Trials",
            [
                panel(
                    "Trials by outcome",
                    "short",
                    (
                        f"sum by (experiment, outcome) (increase(tuneloop_tuner_trials_total{{{S}}}[1h]))",
                        "{{experiment}} {{outcome}}",
                    ),
                ),
                panel(
                    "Best objective",
                    "short",
                    (f"tuneloop_tuner_best_objective{{{S}}}", "{{experiment}}"),
                ),
                panel(
                    "Knob values",
                    "short",
                    (f"tuneloop_tuner_knob_value{{{S}}}", "{{experiment}} {{knob}}"),
                ),
                panel(
                    "Rollbacks",
                    "short",
                    (
                        f"sum by (experiment, reason) (increase(tuneloop_tuner_rollbacks_total{{{S}}}[1h]))",
                        "{{experiment}} {{reason}}",
                    ),
                ),
                panel(
                    "Time since last trial",
                    "s",
                    (
                        f"time() - tuneloop_tuner_last_trial_timestamp_seconds{{{S}}}",
                        "{{experiment}}",
                    ),
                ),
            ],
        ),
        (
            "Traffic shifting",
            [
                panel(
                    "Replicas shifted off their baseline",
                    "short",
                    (f"tuneloop_shift_active{{{H}}}", T),
                ),
                panel(
                    "Weight and baseline",
                    "short",
                    (f"tuneloop_shift_weight{{{H}}}", T + " weight"),
                    (f"tuneloop_shift_baseline_weight{{{H}}}", T + " baseline"),
                ),
                panel(
                    "Smoothed P99 per replica",
                    "s",
                    (f"tuneloop_shift_p99_smoothed_seconds{{{H}}}", T),
                ),
                panel(
                    "Shift events",
                    "short",
                    (
                        f"sum by (shift, target, action) (increase(tuneloop_shift_events_total{{{H}}}[5m]))",
                        T + " {{action}}",
                    ),
                ),
                panel(
                    "Shift duration",
                    "s",
                    (f"time() - tuneloop_shift_active_since_timestamp_seconds{{{H}}}", T),
                ),
            ],
        ),
    ),
    tags=["tuner"],
    annotations=annotations,
)
