"""GPUs: utilization, GPM activity, memory, power, energy, clocks, PCIe, NVLink, video engines,
throttling, XID/ECC, MIG, and the pods holding them.

Close to what dcgm-exporter's dashboard shows, from the agent's NVML collector.
"""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.catalog import gpu
from tuneloop.generate.panels import dashboard as make
from tuneloop.generate.panels import family_panel, label_variable, panel, rows

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
                panel(
                    "Memory bandwidth utilization",
                    "percentunit",
                    (f"tuneloop_gpu_memory_utilization_ratio{{{S}}}", L),
                ),
                panel(
                    "Energy (average power from the counter)",
                    "watt",
                    (f"rate(tuneloop_gpu_energy_joules_total{{{S}}}[$__rate_interval])", L),
                ),
                panel(
                    "Clocks",
                    "hertz",
                    (f"tuneloop_gpu_sm_clock_hertz{{{S}}}", "SM " + L),
                    (f"tuneloop_gpu_memory_clock_hertz{{{S}}}", "memory " + L),
                ),
                panel(
                    "PCIe throughput",
                    "Bps",
                    (f"tuneloop_gpu_pcie_transmit_bytes_per_second{{{S}}}", "tx " + L),
                    (f"tuneloop_gpu_pcie_receive_bytes_per_second{{{S}}}", "rx " + L),
                ),
                panel(
                    "Throttle reasons active",
                    "short",
                    (f"tuneloop_gpu_throttle_reason_active{{{S}}} == 1", L + " {{reason}}"),
                ),
            ],
        ),
        (
            "Activity (GPM, Hopper and later)",
            [
                panel(
                    "SM active",
                    "percentunit",
                    (f"tuneloop_gpu_sm_active_ratio{{{S}}}", L + " {{namespace}}/{{pod}}"),
                ),
                panel(
                    "SM occupancy",
                    "percentunit",
                    (f"tuneloop_gpu_sm_occupancy_ratio{{{S}}}", L + " {{namespace}}/{{pod}}"),
                ),
                panel(
                    "DRAM active",
                    "percentunit",
                    (f"tuneloop_gpu_dram_active_ratio{{{S}}}", L + " {{namespace}}/{{pod}}"),
                ),
                panel(
                    "Pipe active",
                    "percentunit",
                    (f"tuneloop_gpu_pipe_active_ratio{{{S}}}", L + " {{pipe}}"),
                ),
                panel(
                    "GPM supported",
                    "short",
                    (f"tuneloop_gpu_gpm_supported{{{S}}}", L),
                ),
            ],
        ),
        (
            "Interconnect, memory and video",
            [
                panel(
                    "NVLink throughput",
                    "Bps",
                    (
                        f"sum without (namespace, pod, container) (rate(tuneloop_gpu_nvlink_transmit_bytes_total{{{S}}}[$__rate_interval]))",
                        "tx " + L,
                    ),
                    (
                        f"sum without (namespace, pod, container) (rate(tuneloop_gpu_nvlink_receive_bytes_total{{{S}}}[$__rate_interval]))",
                        "rx " + L,
                    ),
                ),
                panel(
                    "NVLink errors (all links; by link in the series' link label)",
                    "short",
                    (
                        f"sum by (cluster, node, gpu, error) (increase(tuneloop_gpu_nvlink_errors_total{{{S}}}[$__rate_interval]))",
                        L + " {{error}}",
                    ),
                ),
                panel(
                    "PCIe replays",
                    "short",
                    (
                        f"sum without (namespace, pod, container) (increase(tuneloop_gpu_pcie_replays_total{{{S}}}[$__rate_interval]))",
                        L,
                    ),
                ),
                panel(
                    "Memory temperature",
                    "celsius",
                    (f"tuneloop_gpu_memory_temperature_celsius{{{S}}}", L),
                ),
                panel(
                    "Video encoder and decoder",
                    "percentunit",
                    (f"tuneloop_gpu_encoder_utilization_ratio{{{S}}}", "encoder " + L),
                    (f"tuneloop_gpu_decoder_utilization_ratio{{{S}}}", "decoder " + L),
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
                    "Time since the last XID",
                    "s",
                    (
                        f"time() - tuneloop_gpu_xid_last_seen_timestamp_seconds{{{S}}}",
                        L + " XID {{xid}}",
                    ),
                ),
                panel(
                    "Lost GPUs and row remaps",
                    "short",
                    (f"tuneloop_gpu_lost{{{S}}}", "lost " + L),
                    (f"tuneloop_gpu_row_remap_failed{{{S}}}", "remap failed " + L),
                    (f"tuneloop_gpu_row_remap_pending{{{S}}}", "remap pending " + L),
                ),
                panel(
                    "Remapped rows",
                    "short",
                    (f"tuneloop_gpu_remapped_rows{{{S}}}", L + " {{cause}}"),
                ),
                panel(
                    "NVML fields skipped",
                    "cps",
                    (
                        f"rate(tuneloop_gpu_field_errors_total{{{S}}}[$__rate_interval])",
                        L + " {{field}} {{error}}",
                    ),
                ),
            ],
        ),
        (
            "Pods on GPUs",
            [
                panel(
                    "GPU memory by pod",
                    "bytes",
                    (
                        f'sum by (cluster, node, gpu, namespace, pod) (tuneloop_gpu_memory_used_bytes{{{S}, pod!=""}})',
                        L + " {{namespace}}/{{pod}}",
                    ),
                ),
                panel(
                    "GPU memory by process (opt-in: gpu.process_metrics)",
                    "bytes",
                    (
                        f"tuneloop_gpu_process_memory_used_bytes{{{S}}}",
                        L + " {{namespace}}/{{pod}} pid {{pid}}",
                    ),
                ),
                panel(
                    "Processes holding a context", "short", (f"tuneloop_gpu_processes{{{S}}}", L)
                ),
                panel(
                    "Processes off the GPU's NUMA node",
                    "short",
                    (f"tuneloop_gpu_process_cross_numa{{{S}}}", "{{namespace}}/{{pod}} " + L),
                ),
            ],
        ),
        (
            "Inventory and MIG",
            [
                panel(
                    "GPUs and their NUMA nodes",
                    "short",
                    (
                        f"tuneloop_gpu_info{{{S}}}",
                        L + " {{name}} NUMA {{numa_node}} {{pci_bus_id}}",
                    ),
                ),
                family_panel(
                    "MIG mode and devices",
                    [gpu.GPU_MIG_ENABLED, gpu.GPU_MIG_INSTANCES],
                    S,
                    L,
                    prefix="tuneloop_gpu_",
                ),
                panel(
                    "MIG device memory used",
                    "percentunit",
                    (
                        f"tuneloop_gpu_mig_memory_used_bytes{{{S}}} / tuneloop_gpu_mig_memory_total_bytes{{{S}}}",
                        L + " MIG {{mig_instance}}",
                    ),
                ),
            ],
        ),
    ),
    tags=["gpu"],
)
