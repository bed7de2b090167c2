"""Where GPU work runs: the record the gpu collector shares with the numa collector."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuProcess:
    """A process holding a context on a GPU, as seen in the gpu collector's last refresh."""

    gpu: str  # the GPU's index as exported in the `gpu` label ("0", "1", ...)
    pid: int
    gpu_numa_node: int | None  # None when the platform reports no NUMA affinity
    pod: str = ""
    namespace: str = ""
    container: str = ""
