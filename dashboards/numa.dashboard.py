"""NUMA and placement: NUMA memory and misses per NUMA node, GPU processes placed across nodes.

NUMA series label the NUMA node ``numa_node``, so the scrape's ``node`` (the Kubernetes node)
survives and every query filters on it directly.
"""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.catalog import numa
from tuneloop.generate.panels import dashboard as make
from tuneloop.generate.panels import family_panel, label_variable, panel, rows

S = 'cluster=~"$cluster", node=~"$node"'
N = "{{node}} NUMA {{numa_node}}"

dashboard = make(
    "tuneloop / NUMA and placement",
    "NUMA memory, allocation misses and GPU processes whose CPUs lie off their GPU's NUMA node.",
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
                        f'sum by (node, numa_node) (rate(tuneloop_numa_events_total{{{S}, event="miss"}}[$__rate_interval])) / sum by (node, numa_node) (rate(tuneloop_numa_events_total{{{S}, event=~"hit|miss"}}[$__rate_interval]))',
                        N,
                    ),
                ),
                panel(
                    "NUMA allocation events",
                    "cps",
                    (
                        f"sum by (node, numa_node, event) (rate(tuneloop_numa_events_total{{{S}}}[$__rate_interval]))",
                        N + " {{event}}",
                    ),
                ),
                panel(
                    "NUMA memory used",
                    "percentunit",
                    (
                        f"tuneloop_numa_memory_used_bytes{{{S}}} / tuneloop_numa_memory_total_bytes{{{S}}}",
                        N,
                    ),
                ),
                family_panel(
                    "NUMA memory",
                    [
                        numa.NUMA_MEMORY_FREE,
                        numa.NUMA_MEMORY_FILE,
                        numa.NUMA_MEMORY_ANON,
                    ],
                    S,
                    N,
                    prefix="tuneloop_numa_memory_",
                ),
                family_panel("CPUs per NUMA node", [numa.NUMA_NODE_CPUS], S, N),
            ],
        ),
        (
            "Placement",
            [
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
