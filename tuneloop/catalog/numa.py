"""NUMA metrics (sysfs node tree) and where GPU processes may run relative to their GPU."""

from tuneloop.catalog.base import MetricSpec, counter, gauge

NUMA_EVENTS = counter(
    "tuneloop_numa_events_total",
    "numastat page allocation events per NUMA node.",
    "numa_node",
    "event",
)
NUMA_MEMORY_TOTAL = gauge(
    "tuneloop_numa_memory_total_bytes",
    "Memory installed on the NUMA node.",
    "numa_node",
    unit="bytes",
)
NUMA_MEMORY_FREE = gauge(
    "tuneloop_numa_memory_free_bytes", "Free memory on the NUMA node.", "numa_node", unit="bytes"
)
NUMA_MEMORY_USED = gauge(
    "tuneloop_numa_memory_used_bytes", "Memory in use on the NUMA node.", "numa_node", unit="bytes"
)
NUMA_MEMORY_FILE = gauge(
    "tuneloop_numa_memory_file_pages_bytes",
    "Page cache on the NUMA node (FilePages).",
    "numa_node",
    unit="bytes",
)
NUMA_MEMORY_ANON = gauge(
    "tuneloop_numa_memory_anon_pages_bytes",
    "Anonymous memory on the NUMA node (AnonPages).",
    "numa_node",
    unit="bytes",
)
NUMA_NODE_CPUS = gauge("tuneloop_numa_node_cpus", "Logical CPUs on the NUMA node.", "numa_node")
GPU_PROCESS_OFF_NODE_CPUS = gauge(
    "tuneloop_gpu_process_off_node_cpus_ratio",
    "Fraction of the process's allowed CPUs that lie off its GPU's NUMA node.",
    "gpu",
    "pid",
    "pod",
    "namespace",
    unit="ratio",
    scrape_meaning=("pod", "namespace"),
)

# node*/meminfo field -> metric (kB in the file, bytes exported).
MEMINFO: dict[str, MetricSpec] = {
    "MemTotal": NUMA_MEMORY_TOTAL,
    "MemFree": NUMA_MEMORY_FREE,
    "MemUsed": NUMA_MEMORY_USED,
    "FilePages": NUMA_MEMORY_FILE,
    "AnonPages": NUMA_MEMORY_ANON,
}

# node*/numastat field -> value of the `event` label.
NUMASTAT_EVENTS: dict[str, str] = {
    "numa_hit": "hit",
    "numa_miss": "miss",
    "numa_foreign": "foreign",
    "interleave_hit": "interleave",
    "local_node": "local",
    "other_node": "other",
}

SPECS = (NUMA_EVENTS, *MEMINFO.values(), NUMA_NODE_CPUS, GPU_PROCESS_OFF_NODE_CPUS)
