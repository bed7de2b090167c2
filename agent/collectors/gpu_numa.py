"""Which NUMA node a GPU hangs off: PCI sysfs first, NVML's CPU affinity as the fallback.

``{sysfs}/bus/pci/devices/<dddd:bb:dd.f>/numa_node`` is the kernel's answer (NVML writes bus
IDs with an 8-digit upper-case domain, ``00000000:17:00.0``; sysfs uses 4 digits, lower case).
It reads -1 on platforms whose firmware gives no proximity info, or inside VMs; then the GPU's
ideal CPU affinity from NVML is mapped onto ``{sysfs}/devices/system/node/node*/cpulist``: the
node whose CPUs hold the affinity set. An affinity spanning several nodes means no single node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pynvml

from agent.hostfs import read_text
from agent.nvml.api import NvmlLike


def sysfs_bus_id(nvml_bus_id: str) -> str:
    """``00000000:17:00.0`` -> ``0000:17:00.0`` (4-digit domain, lower case)."""
    domain, sep, rest = nvml_bus_id.strip().partition(":")
    if not sep or len(rest.split(":")) != 2:
        raise ValueError(f"not a PCI bus ID: {nvml_bus_id!r}")
    return f"{int(domain, 16):04x}:{rest.lower()}"


def parse_cpulist(text: str) -> set[int]:
    """``0-3,8,10-11`` -> {0, 1, 2, 3, 8, 10, 11}; ValueError on anything else."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def node_cpus(sysfs: Path) -> dict[int, set[int]]:
    """NUMA node -> its CPUs, from ``{sysfs}/devices/system/node``; empty when absent."""
    nodes: dict[int, set[int]] = {}
    base = sysfs / "devices" / "system" / "node"
    if not base.is_dir():
        return nodes
    for entry in base.glob("node[0-9]*"):
        try:
            nodes[int(entry.name[4:])] = parse_cpulist(read_text(entry / "cpulist"))
        except (OSError, ValueError):
            continue
    return nodes


def pci_numa_node(sysfs: Path, nvml_bus_id: str) -> int | None:
    """The kernel's NUMA node for the device, or None when missing or -1."""
    try:
        path = sysfs / "bus" / "pci" / "devices" / sysfs_bus_id(nvml_bus_id) / "numa_node"
        node = int(read_text(path).strip())
    except (OSError, ValueError):
        return None
    return node if node >= 0 else None


def affinity_numa_node(nvml: NvmlLike, handle: Any, nodes: dict[int, set[int]]) -> int | None:
    """The one node holding the GPU's NVML CPU affinity, or None."""
    if not nodes:
        return None
    words = (max(max(cpus, default=0) for cpus in nodes.values()) + 64) // 64
    try:
        mask = nvml.nvmlDeviceGetCpuAffinity(handle, words)
    except pynvml.NVMLError:
        return None
    cpus = {w * 64 + bit for w in range(words) for bit in range(64) if int(mask[w]) >> bit & 1}
    holding = [node for node, node_set in nodes.items() if cpus & node_set]
    return holding[0] if len(holding) == 1 else None


def gpu_numa_node(sysfs: Path, nvml: NvmlLike, handle: Any, bus_id: str) -> int | None:
    """PCI sysfs first, NVML CPU affinity when sysfs has no answer."""
    node = pci_numa_node(sysfs, bus_id)
    if node is None:
        node = affinity_numa_node(nvml, handle, node_cpus(sysfs))
    return node
