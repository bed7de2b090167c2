"""The numa collector: per-node memory and numastat from sysfs, and GPU processes off their node.

Design decisions:

- ``tuneloop_gpu_process_cross_numa`` is 1 when the process's ``Cpus_allowed_list`` contains any
  CPU outside the GPU's NUMA node's ``cpulist``: the scheduler *may* run it there, which is what
  an operator can fix (cpuset, CPU manager policy). Where it happens to run right now is noise.
  ``tuneloop_gpu_process_off_node_cpus_ratio`` says how much of the allowed set is off the node.
- A process that exited between the gpu collector's snapshot and this read, or whose GPU has no
  known NUMA node, is skipped: both are normal and neither makes the collection fail. A status
  file without a readable Cpus_allowed_list skips that process with a warning.
- Malformed meminfo or numastat lines raise: the kernel format is stable, so a bad line means the
  wrong path was mounted, and silence would hide it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from prometheus_client.core import Metric

from agent.collectors.base import Collector, CollectorError
from agent.placement import GpuProcess
from tuneloop.catalog import gpu as gpu_catalog
from tuneloop.catalog import numa as catalog

log = logging.getLogger(__name__)

_NODE_DIR = re.compile(r"^node(\d+)$")
_KIB = 1024


def parse_cpulist(text: str, source: str = "cpulist") -> frozenset[int]:
    """CPUs of a kernel list like ``0-55,112-167`` (empty text: no CPUs)."""
    cpus: set[int] = set()
    text = text.strip()
    if not text:
        return frozenset()
    for part in text.split(","):
        first, sep, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if sep else low
        except ValueError:
            raise CollectorError(f"{source}: bad CPU list {text!r}") from None
        if low < 0 or high < low:
            raise CollectorError(f"{source}: bad CPU range {part!r} in {text!r}")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def _read_meminfo(path: Path) -> dict[str, int]:
    """``Node 0 MemTotal:  5990604 kB`` lines -> {field: bytes or count}."""
    values: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        words = line.split()
        if len(words) not in (4, 5) or words[0] != "Node" or not words[2].endswith(":"):
            raise CollectorError(f"{path}:{lineno}: expected 'Node N Field: value [kB]'")
        try:
            value = int(words[3])
        except ValueError:
            raise CollectorError(f"{path}:{lineno}: value {words[3]!r} is not an integer") from None
        values[words[2][:-1]] = value * _KIB if len(words) == 5 else value
    return values


def _read_numastat(path: Path) -> dict[str, int]:
    """``numa_hit 2136726`` lines -> {field: count}."""
    values: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        words = line.split()
        try:
            if len(words) != 2:
                raise ValueError
            values[words[0]] = int(words[1])
        except ValueError:
            raise CollectorError(f"{path}:{lineno}: expected 'field count', got {line!r}") from None
    return values


def _read_allowed_cpus(status: Path) -> frozenset[int] | None:
    """Cpus_allowed_list of /proc/<pid>/status; None when the process is gone."""
    try:
        text = status.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Cpus_allowed_list":
            return parse_cpulist(value, f"{status}: Cpus_allowed_list")
    raise CollectorError(f"{status}: no Cpus_allowed_list line")


class NumaCollector(Collector):
    """Reads ``{sysfs}/devices/system/node`` and, per GPU process, ``{procfs}/<pid>/status``."""

    name = "numa"

    def __init__(
        self,
        sysfs: Path,
        procfs: Path,
        gpu_processes: Callable[[], Sequence[GpuProcess]] | None = None,
    ) -> None:
        super().__init__()
        self.sysfs = Path(sysfs)
        self.procfs = Path(procfs)
        self.gpu_processes = gpu_processes

    def _nodes(self) -> dict[int, Path]:
        root = self.sysfs / "devices" / "system" / "node"
        try:
            entries = list(root.iterdir())
        except OSError as err:
            raise CollectorError(f"cannot list NUMA nodes in {root}: {err.strerror}") from None
        nodes = {}
        for entry in entries:
            match = _NODE_DIR.match(entry.name)
            if match:
                nodes[int(match.group(1))] = entry
        if not nodes:
            raise CollectorError(f"no node<N> directories in {root}")
        return dict(sorted(nodes.items()))

    def scrape(self) -> Iterable[Metric]:
        """Read every node's meminfo, numastat and cpulist, then place the GPU processes."""
        nodes = self._nodes()
        memory = {spec.name: spec.family() for spec in catalog.MEMINFO.values()}
        events = catalog.NUMA_EVENTS.family()
        cpus_family = catalog.NUMA_NODE_CPUS.family()
        node_cpus: dict[int, frozenset[int]] = {}
        for node, path in nodes.items():
            label = str(node)
            meminfo = path / "meminfo"
            if meminfo.exists():
                values = _read_meminfo(meminfo)
                for field, spec in catalog.MEMINFO.items():
                    if field in values:
                        memory[spec.name].add_metric([label], float(values[field]))
            numastat = path / "numastat"
            if numastat.exists():
                stats = _read_numastat(numastat)
                for field, event in catalog.NUMASTAT_EVENTS.items():
                    if field in stats:
                        events.add_metric([label, event], float(stats[field]))
            cpulist = path / "cpulist"
            if cpulist.exists():
                node_cpus[node] = parse_cpulist(cpulist.read_text(), str(cpulist))
                cpus_family.add_metric([label], float(len(node_cpus[node])))
        yield from memory.values()
        yield events
        yield cpus_family
        if self.gpu_processes is not None:
            yield from self._placement(self.gpu_processes(), node_cpus)

    def _placement(
        self, processes: Sequence[GpuProcess], node_cpus: dict[int, frozenset[int]]
    ) -> tuple[Metric, Metric]:
        cross = gpu_catalog.GPU_PROCESS_CROSS_NUMA.family()
        ratio = catalog.GPU_PROCESS_OFF_NODE_CPUS.family()
        for proc in processes:
            local = node_cpus.get(proc.gpu_numa_node) if proc.gpu_numa_node is not None else None
            if not local:
                log.debug(
                    "gpu %s: NUMA node %s unknown, skipping pid %d",
                    proc.gpu,
                    proc.gpu_numa_node,
                    proc.pid,
                )
                continue
            try:
                allowed = _read_allowed_cpus(self.procfs / str(proc.pid) / "status")
            except CollectorError as err:
                log.warning("skipping pid %d: %s", proc.pid, err)
                continue
            if allowed is None:
                log.debug("pid %d exited before its CPU affinity was read", proc.pid)
                continue
            off_node = allowed - local
            labels = [proc.gpu, str(proc.pid), proc.pod, proc.namespace]
            cross.add_metric(labels, 1.0 if off_node else 0.0)
            ratio.add_metric(labels, len(off_node) / len(allowed) if allowed else 0.0)
        return cross, ratio
