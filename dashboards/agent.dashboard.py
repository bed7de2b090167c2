"""The node agent itself: collectors, inference scrapes, node tuning, perf stat windows."""

from tuneloop import catalog
from tuneloop.generate.panels import dashboard as make
from tuneloop.generate.panels import family_panel, label_variable, panel, rows

S = 'cluster=~"$cluster", node=~"$node"'
N = "{{node}}"

dashboard = make(
    "tuneloop / Node agent",
    "The agent's collectors, its reads of inference servers, node tuning and perf stat results.",
    [
        label_variable("cluster", "tuneloop_collector_success"),
        label_variable("node", "tuneloop_collector_success", 'cluster=~"$cluster"'),
    ],
    rows(
        (
            "Collectors",
            [
                panel(
                    "Collector success",
                    "short",
                    (f"tuneloop_collector_success{{{S}}}", N + " {{collector}}"),
                ),
                panel(
                    "Collection time",
                    "s",
                    (f"tuneloop_collector_duration_seconds{{{S}}}", N + " {{collector}}"),
                ),
                panel(
                    "Time since the last successful collection",
                    "s",
                    (
                        f"time() - tuneloop_collector_last_success_timestamp_seconds{{{S}}}",
                        N + " {{collector}}",
                    ),
                ),
                panel(
                    "Collection failures",
                    "cps",
                    (
                        f"rate(tuneloop_collector_failures_total{{{S}}}[$__rate_interval])",
                        N + " {{collector}} {{reason}}",
                    ),
                ),
                panel(
                    "Host file read errors",
                    "cps",
                    (
                        f"rate(tuneloop_collector_read_errors_total{{{S}}}[$__rate_interval])",
                        N + " {{collector}} {{reason}}",
                    ),
                ),
            ],
        ),
        (
            "Inference servers",
            [
                panel(
                    "Inference server reachable",
                    "short",
                    (f"tuneloop_inference_target_up{{{S}}}", N + " {{target}} {{engine}}"),
                ),
                panel(
                    "Inference /metrics read time",
                    "s",
                    (
                        f"tuneloop_inference_scrape_duration_seconds{{{S}}}",
                        N + " {{target}} {{engine}}",
                    ),
                ),
                panel(
                    "Inference /metrics read failures",
                    "cps",
                    (
                        f"rate(tuneloop_inference_scrape_failures_total{{{S}}}[$__rate_interval])",
                        N + " {{target}} {{reason}}",
                    ),
                ),
            ],
        ),
        (
            "Node tuning",
            [
                panel(
                    "Sysctls: current and desired",
                    "short",
                    (f"tuneloop_nodetune_sysctl_value{{{S}}}", "current {{key}} {{field}} " + N),
                    (f"tuneloop_nodetune_desired_value{{{S}}}", "desired {{key}} {{field}} " + N),
                ),
                panel(
                    "Generations and sync",
                    "short",
                    (f"tuneloop_nodetune_desired_generation{{{S}}}", "desired " + N),
                    (f"tuneloop_nodetune_applied_generation{{{S}}}", "applied " + N),
                    (f"tuneloop_nodetune_in_sync{{{S}}}", "in sync " + N),
                ),
                panel(
                    "Reconciler state and congestion control",
                    "short",
                    (f"tuneloop_nodetune_state{{{S}}}", N + " {{state}}"),
                    (
                        f"tuneloop_nodetune_congestion_control_info{{{S}}}",
                        N + " {{state}} {{algorithm}}",
                    ),
                ),
                panel(
                    "Apply failures and last apply",
                    "short",
                    (
                        f"rate(tuneloop_nodetune_failures_total{{{S}}}[$__rate_interval])",
                        "failures/s " + N + " {{reason}}",
                    ),
                    (
                        f"time() - tuneloop_nodetune_last_apply_timestamp_seconds{{{S}}}",
                        "seconds since the last apply " + N,
                    ),
                ),
            ],
        ),
        (
            "perf stat",
            [
                family_panel(
                    "Events per second",
                    [catalog.get("tuneloop_perf_event_per_second")],
                    S,
                    N + " {{event}}",
                    prefix="tuneloop_perf_",
                ),
                family_panel(
                    "Instructions per cycle",
                    [catalog.get("tuneloop_perf_instructions_per_cycle")],
                    S,
                    N,
                    prefix="tuneloop_perf_",
                ),
                panel(
                    "Events the machine can count",
                    "short",
                    (f"tuneloop_perf_event_supported{{{S}}}", N + " {{event}} {{status}}"),
                ),
                panel(
                    "perf stat window",
                    "s",
                    (f"tuneloop_perf_window_seconds{{{S}}}", "window " + N),
                    (
                        f"time() - tuneloop_perf_last_run_timestamp_seconds{{{S}}}",
                        "since the last window " + N,
                    ),
                ),
            ],
        ),
    ),
    tags=["agent"],
)
