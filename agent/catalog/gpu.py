"""GPU metrics (NVML)."""

from agent.catalog.base import counter, gauge

GPU_INFO = gauge(
    "tuneloop_gpu_info",
    "Always 1; one series per GPU carrying its identity.",
    "gpu",
    "uuid",
    "name",
    "pci_bus_id",
    "numa_node",
)
GPU_UTILIZATION = gauge(
    "tuneloop_gpu_utilization_ratio",
    "GPU busy fraction over NVML's sample period.",
    "gpu",
    unit="ratio",
)
GPU_MEMORY_USED = gauge(
    "tuneloop_gpu_memory_used_bytes", "Framebuffer memory in use.", "gpu", unit="bytes"
)
GPU_MEMORY_TOTAL = gauge(
    "tuneloop_gpu_memory_total_bytes", "Framebuffer memory installed.", "gpu", unit="bytes"
)
GPU_POWER = gauge("tuneloop_gpu_power_watts", "Power draw.", "gpu", unit="watts")
GPU_TEMPERATURE = gauge(
    "tuneloop_gpu_temperature_celsius", "GPU die temperature.", "gpu", unit="celsius"
)
GPU_XID_ERRORS = counter(
    "tuneloop_gpu_xid_errors_total", "XID events seen by the agent, by code.", "gpu", "xid"
)
GPU_PROCESS_CROSS_NUMA = gauge(
    "tuneloop_gpu_process_cross_numa",
    "1 when the process's allowed CPUs lie off its GPU's NUMA node.",
    "gpu",
    "pid",
    "pod",
    "namespace",
)

SPECS = (
    GPU_INFO,
    GPU_UTILIZATION,
    GPU_MEMORY_USED,
    GPU_MEMORY_TOTAL,
    GPU_POWER,
    GPU_TEMPERATURE,
    GPU_XID_ERRORS,
    GPU_PROCESS_CROSS_NUMA,
)
