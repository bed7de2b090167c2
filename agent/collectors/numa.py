"""The numa collector: per-node memory and numastat from sysfs, and GPU processes off their node.

Design decisions:

- ``tuneloop_gpu_process_cross_numa`` is 1 when the process's ``Cpus_allowed_list`` contains any
  CPU outside the GPU's NUMA node's ``cpulist``: the scheduler *may* run it there, which is what
  an operator can fix (cpuset, CPU manager policy). Where it happens to run right now is noise.
  ``tuneloop_gpu_process_off_node_cpus_ratio`` says how much of the allowed set is off the node.
- A process that exited between the gpu collector's snapshot and this read, or whose GPU has no
  known NUMA node, is skipped: both are normal and neither makes the collection fail. A status
  file without a readable Cpus_allowed_list skips that process with a warning.
- Every node file is optional and read through ``agent.hostfs`` (a FIFO is refused without
  blocking, no file is read past a small bound). A malformed line of meminfo or numastat drops
  that line's series; an unreadable or malformed cpulist drops that node's CPU count and the
  placement of its GPU processes. Each is counted in
  ``tuneloop_collector_read_errors_total{collector="numa",reason}`` and logged once at warning:
  the collection fails only when no node can be listed at all.
- An empty cpulist is a node without CPUs (a memory-only node). A GPU on such a node has every
  allowed CPU of its processes off its node, so they are exported as cross-NUMA (ratio 1), and
  the empty list is counted (reason ``empty``) and logged at warning, because it is also what a
  wrong mount looks like.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from prometheus_client.core import Metric

from agent.collectors.base import Collector, CollectorError
from agent.hostfs import HostFileError, ReadErrors, read_text
from agent.placement import GpuProcess
from tuneloop.catalog import gpu as gpu_catalog
from tuneloop.catalog import numa as catalog

log = logging.getLogger(__name__)

_NODE_DIR = re.compile(r"^node(\d+)$")
_KIB = 1024
_T = TypeVar("_T")


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


def _read_meminfo(path: Path, errors: ReadErrors) -> dict[str, int]:
    """``Node 0 MemTotal:  5990604 kB`` lines -> {field: bytes or count}; bad lines counted."""
    values: dict[str, int] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        words = line.split()
        if len(words) not in (4, 5) or words[0] != "Node" or not words[2].endswith(":"):
            errors.count("malformed", f"{path}:{lineno}", "expected 'Node N Field: value [kB]'")
            continue
        try:
            value = int(words[3])
        except ValueError:
            errors.count("malformed", f"{path}:{lineno}", f"{words[3]!r} is not an integer")
            continue
        values[words[2][:-1]] = value * _KIB if len(words) == 5 else value
    return values


def _read_numastat(path: Path, errors: ReadErrors) -> dict[str, int]:
    """``numa_hit 2136726`` lines -> {field: count}; bad lines counted."""
    values: dict[str, int] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        words = line.split()
        try:
            if len(words) != 2:
                raise ValueError
            values[words[0]] = int(words[1])
        except ValueError:
            errors.count("malformed", f"{path}:{lineno}", f"expected 'field count', got {line!r}")
    return values


def _read_node_cpulist(path: Path, errors: ReadErrors) -> frozenset[int]:
    """A node's CPUs (empty for a memory-only node)."""
    return parse_cpulist(read_text(path), str(path))


def _read_allowed_cpus(status: Path) -> frozenset[int] | None:
    """Cpus_allowed_list of /proc/<pid>/status; None when the process is gone."""
    try:
        text = read_text(status)
    except HostFileError as err:
        if err.reason == "missing":
            return None
        raise
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
        self.read_errors = ReadErrors(self.name)

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
            values = self._optional(path / "meminfo", _read_meminfo) or {}
            for field, spec in catalog.MEMINFO.items():
                if field in values:
                    memory[spec.name].add_metric([label], float(values[field]))
            stats = self._optional(path / "numastat", _read_numastat) or {}
            for field, event in catalog.NUMASTAT_EVENTS.items():
                if field in stats:
                    events.add_metric([label, event], float(stats[field]))
            cpus = self._optional(path / "cpulist", _read_node_cpulist)
            if cpus is not None:
                node_cpus[node] = cpus
                cpus_family.add_metric([label], float(len(cpus)))
        yield from memory.values()
        yield events
        yield cpus_family
        if self.gpu_processes is not None:
            yield from self._placement(self.gpu_processes(), node_cpus, nodes)

    def _optional(self, path: Path, read: Callable[[Path, ReadErrors], _T]) -> _T | None:
        """``read(path)``; None when the file is absent, or unreadable (counted)."""
        try:
            return read(path, self.read_errors)
        except HostFileError as err:
            if err.reason != "missing":
                self.read_errors.failed(err)
        except CollectorError as err:
            self.read_errors.count("malformed", path, str(err))
        return None

    def _placement(
        self,
        processes: Sequence[GpuProcess],
        node_cpus: dict[int, frozenset[int]],
        nodes: dict[int, Path],
    ) -> tuple[Metric, Metric]:
        cross = gpu_catalog.GPU_PROCESS_CROSS_NUMA.family()
        ratio = catalog.GPU_PROCESS_OFF_NODE_CPUS.family()
        empty_reported: set[int] = set()
        for proc in processes:
            node = proc.gpu_numa_node
            local = node_cpus.get(node) if node is not None else None
            if local is None:
                log.debug("gpu %s: NUMA node %s unknown, skipping pid %d", proc.gpu, node, proc.pid)
                continue
            if not local and node is not None and node not in empty_reported:
                empty_reported.add(node)
                self.read_errors.count(
                    "empty",
                    nodes[node] / "cpulist",
                    f"NUMA node {node} lists no CPUs; its GPU processes count as cross-NUMA",
                )
            status = self.procfs / str(proc.pid) / "status"
            try:
                allowed = _read_allowed_cpus(status)
            except HostFileError as err:
                self.read_errors.failed(err)
                continue
            except CollectorError as err:
                self.read_errors.count("malformed", status, str(err))
                continue
            if allowed is None:
                log.debug("pid %d exited before its CPU affinity was read", proc.pid)
                continue
            off_node = allowed - local
            labels = [proc.gpu, str(proc.pid), proc.pod, proc.namespace]
            cross.add_metric(labels, 1.0 if off_node else 0.0)
            ratio.add_metric(labels, len(off_node) / len(allowed) if allowed else 0.0)
        return cross, ratio
