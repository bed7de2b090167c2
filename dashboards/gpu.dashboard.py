"""GPUs: utilization, memory, power, temperature, clocks, throttling, XID/ECC, and their pods."""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.panels import dashboard as make
from tuneloop.generate.panels import label_variable, panel, rows

S = 'cluster=~"$cluster", node=~"$node", gpu=~"$gpu"'
L = "{{node}} GPU {{gpu}}"

dashboard = make(
    "tuneloop / GPUs",
    "Per node and GPU health from NVML, with the pods running on each GPU.",
    [
        label_variable("cluster", "tuneloop_gpu_info"),
        label_variable("node", "tuneloop_gpu_info", 'cluster=~"$cluster"'),
        label_variable("gpu", "tuneloop_gpu_info", 'node=~"$node"'),
    ],
    rows(
        (
            "Load",
            [
                panel("Utilization", "percentunit", (f"tuneloop_gpu_utilization_ratio{{{S}}}", L)),
                panel(
                    "Memory used",
                    "percentunit",
                    (
                        f"tuneloop_gpu_memory_used_bytes{{{S}}} / tuneloop_gpu_memory_total_bytes{{{S}}}",
                        L,
                    ),
                ),
                panel("Power", "watt", (f"tuneloop_gpu_power_watts{{{S}}}", L)),
                panel("Temperature", "celsius", (f"tuneloop_gpu_temperature_celsius{{{S}}}", L)),
                panel("SM clock", "hertz", (f"tuneloop_gpu_sm_clock_hertz{{{S}}}", L)),
                panel(
                    "Throttle reasons active",
                    "short",
                    (f"tuneloop_gpu_throttle_reason_active{{{S}}} == 1", L + " {{reason}}"),
                ),
            ],
        ),
        (
            "Errors",
            [
                panel(
                    "XID events",
                    "short",
                    (
                        f"increase(tuneloop_gpu_xid_errors_total{{{S}}}[$__rate_interval])",
                        L + " XID {{xid}}",
                    ),
                ),
                panel(
                    "ECC errors",
                    "short",
                    (
                        f"increase(tuneloop_gpu_ecc_errors_total{{{S}}}[$__rate_interval])",
                        L + " {{type}} {{scope}}",
                    ),
                ),
                panel(
                    "Lost GPUs and failed row remaps",
                    "short",
                    (f"tuneloop_gpu_lost{{{S}}}", "lost " + L),
                    (f"tuneloop_gpu_row_remap_failed{{{S}}}", "remap failed " + L),
                ),
            ],
        ),
        (
            "Pods on GPUs",
            [
                panel(
                    "GPU memory by process",
                    "bytes",
                    (f"tuneloop_gpu_process_memory_used_bytes{{{S}}}", L + " pid {{pid}}"),
                ),
                panel(
                    "Processes off the GPU's NUMA node",
                    "short",
                    (f"tuneloop_gpu_process_cross_numa{{{S}}}", "{{namespace}}/{{pod}} " + L),
                ),
            ],
        ),
    ),
    tags=["gpu"],
)
