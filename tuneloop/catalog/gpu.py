"""GPU metrics (NVML).

Device metrics end in the workload labels ``namespace``, ``pod``, ``container``: the Kubernetes
workload holding the GPU (for a per-MIG series, the MIG device) as the kubelet's pod-resources
API reports it, in exactly the scrape's meaning. They are empty when no pod holds the device, and
when several pods share it (time-slicing) rather than a guess. ``pid`` appears only on the opt-in
per-process family: on every device metric it would start new series at each process restart.
A counter changes series when its GPU changes hands; sum it ``without (namespace, pod,
container)`` for the device's own total.
"""

from tuneloop.catalog.base import MetricSpec, MetricType, counter, gauge

WORKLOAD_LABELS = ("namespace", "pod", "container")


def device(kind: MetricType, name: str, help: str, *labels: str, unit: str = "") -> MetricSpec:
    """A per-device metric: its own labels, then the workload labels of who holds the device."""
    return MetricSpec(
        name, kind, help, (*labels, *WORKLOAD_LABELS), unit, scrape_meaning=WORKLOAD_LABELS
    )


GPU_INFO = gauge(
    "tuneloop_gpu_info",
    "Always 1; one series per GPU carrying its identity.",
    "gpu",
    "uuid",
    "name",
    "pci_bus_id",
    "numa_node",
)
GPU_UTILIZATION = device(
    "gauge",
    "tuneloop_gpu_utilization_ratio",
    "GPU busy fraction over NVML's sample period.",
    "gpu",
    unit="ratio",
)
GPU_MEMORY_USED = device(
    "gauge", "tuneloop_gpu_memory_used_bytes", "Framebuffer memory in use.", "gpu", unit="bytes"
)
GPU_MEMORY_TOTAL = device(
    "gauge", "tuneloop_gpu_memory_total_bytes", "Framebuffer memory installed.", "gpu", unit="bytes"
)
GPU_POWER = device("gauge", "tuneloop_gpu_power_watts", "Power draw.", "gpu", unit="watts")
GPU_TEMPERATURE = device(
    "gauge", "tuneloop_gpu_temperature_celsius", "GPU die temperature.", "gpu", unit="celsius"
)
GPU_XID_ERRORS = device(
    "counter",
    "tuneloop_gpu_xid_errors_total",
    "XID events seen by the agent, by code.",
    "gpu",
    "xid",
)
GPU_PROCESS_CROSS_NUMA = gauge(
    "tuneloop_gpu_process_cross_numa",
    "1 when the process's allowed CPUs lie off its GPU's NUMA node.",
    "gpu",
    "pid",
    "pod",
    "namespace",
    scrape_meaning=("pod", "namespace"),
)

GPU_MEMORY_UTILIZATION = device(
    "gauge",
    "tuneloop_gpu_memory_utilization_ratio",
    "Fraction of NVML's sample period during which device memory was read or written.",
    "gpu",
    unit="ratio",
)
GPU_ENERGY = device(
    "counter",
    "tuneloop_gpu_energy_joules_total",
    "Energy consumed since the driver was last loaded.",
    "gpu",
    unit="joules",
)
GPU_SM_CLOCK = device(
    "gauge", "tuneloop_gpu_sm_clock_hertz", "Current SM clock.", "gpu", unit="hertz"
)
GPU_MEMORY_CLOCK = device(
    "gauge", "tuneloop_gpu_memory_clock_hertz", "Current memory clock.", "gpu", unit="hertz"
)
GPU_PCIE_TRANSMIT = device(
    "gauge",
    "tuneloop_gpu_pcie_transmit_bytes_per_second",
    "PCIe transmit throughput over NVML's 20 ms sample.",
    "gpu",
    unit="bytes_per_second",
)
GPU_PCIE_RECEIVE = device(
    "gauge",
    "tuneloop_gpu_pcie_receive_bytes_per_second",
    "PCIe receive throughput over NVML's 20 ms sample.",
    "gpu",
    unit="bytes_per_second",
)
GPU_THROTTLE_REASON = device(
    "gauge",
    "tuneloop_gpu_throttle_reason_active",
    "1 while this clock event (throttle) reason holds the clocks down.",
    "gpu",
    "reason",
)
GPU_XID_LAST_SEEN = device(
    "gauge",
    "tuneloop_gpu_xid_last_seen_timestamp_seconds",
    "Unix time the agent last saw this XID on this GPU.",
    "gpu",
    "xid",
    unit="seconds",
)
GPU_ECC_ERRORS = device(
    "counter",
    "tuneloop_gpu_ecc_errors_total",
    "ECC memory errors: volatile since driver load, aggregate over the GPU's life.",
    "gpu",
    "type",
    "scope",
)
GPU_REMAPPED_ROWS = device(
    "gauge",
    "tuneloop_gpu_remapped_rows",
    "Memory rows remapped, by the kind of error that caused it.",
    "gpu",
    "cause",
)
GPU_ROW_REMAP_PENDING = device(
    "gauge",
    "tuneloop_gpu_row_remap_pending",
    "1 when a row remap waits for a GPU reset.",
    "gpu",
)
GPU_ROW_REMAP_FAILED = device(
    "gauge",
    "tuneloop_gpu_row_remap_failed",
    "1 when a row remap failed (the GPU needs service).",
    "gpu",
)
GPU_MIG_ENABLED = gauge("tuneloop_gpu_mig_enabled", "1 when MIG mode is on.", "gpu")
GPU_MIG_INSTANCES = gauge(
    "tuneloop_gpu_mig_instances", "MIG devices present on a MIG-enabled GPU.", "gpu"
)
GPU_MIG_MEMORY_USED = device(
    "gauge",
    "tuneloop_gpu_mig_memory_used_bytes",
    "Memory in use on one MIG device.",
    "gpu",
    "mig_instance",
    "uuid",
    unit="bytes",
)
GPU_MIG_MEMORY_TOTAL = device(
    "gauge",
    "tuneloop_gpu_mig_memory_total_bytes",
    "Memory of one MIG device.",
    "gpu",
    "mig_instance",
    "uuid",
    unit="bytes",
)
GPU_PROCESSES = device(
    "gauge", "tuneloop_gpu_processes", "Compute processes holding a context on the GPU.", "gpu"
)
GPU_PROCESS_MEMORY = gauge(
    "tuneloop_gpu_process_memory_used_bytes",
    "GPU memory used by one process, attributed to its pod where known. Opt-in "
    "(gpu.process_metrics): its pid label starts a new series at every process restart.",
    "gpu",
    "pid",
    "pod",
    "namespace",
    "container",
    unit="bytes",
    scrape_meaning=("pod", "namespace", "container"),
)
GPU_LOST = gauge(
    "tuneloop_gpu_lost",
    "1 when NVML reports the GPU lost (fallen off the bus); its other series stop.",
    "gpu",
)
GPU_FIELD_ERRORS = counter(
    "tuneloop_gpu_field_errors_total",
    "Fields the collector skipped for a GPU, by NVML error (not_supported, no_permission, ...).",
    "gpu",
    "field",
    "error",
)

SPECS = (
    GPU_INFO,
    GPU_UTILIZATION,
    GPU_MEMORY_UTILIZATION,
    GPU_MEMORY_USED,
    GPU_MEMORY_TOTAL,
    GPU_POWER,
    GPU_ENERGY,
    GPU_TEMPERATURE,
    GPU_SM_CLOCK,
    GPU_MEMORY_CLOCK,
    GPU_PCIE_TRANSMIT,
    GPU_PCIE_RECEIVE,
    GPU_THROTTLE_REASON,
    GPU_XID_ERRORS,
    GPU_XID_LAST_SEEN,
    GPU_ECC_ERRORS,
    GPU_REMAPPED_ROWS,
    GPU_ROW_REMAP_PENDING,
    GPU_ROW_REMAP_FAILED,
    GPU_MIG_ENABLED,
    GPU_MIG_INSTANCES,
    GPU_MIG_MEMORY_USED,
    GPU_MIG_MEMORY_TOTAL,
    GPU_PROCESSES,
    GPU_PROCESS_MEMORY,
    GPU_PROCESS_CROSS_NUMA,
    GPU_LOST,
    GPU_FIELD_ERRORS,
)
