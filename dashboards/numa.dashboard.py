"""NUMA and placement: NUMA miss ratio, GPU processes placed across NUMA nodes."""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.panels import dashboard as make
from tuneloop.generate.panels import label_variable, panel, rows

S = 'cluster=~"$cluster", node=~"$node"'
# numastat series carry their own ``node`` label (the NUMA node), which wins over the target's
# Kubernetes node (the ServiceMonitor honours the agent's labels); they are matched to the
# selected Kubernetes nodes through the agent's numa collector series on the same instance.
C = 'cluster=~"$cluster"'

dashboard = make(
    "tuneloop / NUMA and placement",
    "NUMA allocation misses and GPU processes whose CPUs lie off their GPU's NUMA node.",
    [
        label_variable("cluster", "tuneloop_collector_success"),
        label_variable("node", "tuneloop_collector_success", 'cluster=~"$cluster"'),
        label_variable("namespace", "tuneloop_gpu_process_cross_numa", 'node=~"$node"'),
    ],
    rows(
        (
            "NUMA",
            [
                panel(
                    "NUMA miss ratio",
                    "percentunit",
                    (
                        f'(sum by (instance, node) (rate(tuneloop_numa_events_total{{{C}, event="miss"}}[$__rate_interval])) / sum by (instance, node) (rate(tuneloop_numa_events_total{{{C}, event=~"hit|miss"}}[$__rate_interval]))) and on (instance) tuneloop_collector_success{{{S}, collector="numa"}}',
                        "{{instance}} NUMA node {{node}}",
                    ),
                ),
                panel(
                    "Cross-NUMA GPU processes",
                    "short",
                    (
                        f'sum by (node) (tuneloop_gpu_process_cross_numa{{{S}, namespace=~"$namespace"}})',
                        "{{node}}",
                    ),
                ),
                panel(
                    "Share of a process's CPUs off the GPU's node",
                    "percentunit",
                    (
                        f'tuneloop_gpu_process_off_node_cpus_ratio{{{S}, namespace=~"$namespace"}}',
                        "{{namespace}}/{{pod}} GPU {{gpu}}",
                    ),
                ),
            ],
        ),
    ),
    tags=["numa", "placement"],
)
