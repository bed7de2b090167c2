"""The gpu collector: NVML telemetry, XID events, GPU processes attributed to pods.

Design decisions:

- The ``gpu`` label is the NVML index ("0".."7"); ``tuneloop_gpu_info`` joins it to UUID, name,
  PCI bus ID (NVML's form) and NUMA node (``-1`` when the platform reports none).
- Identity (name, UUID, bus ID, NUMA node) is read once per GPU and cached, so a GPU that is
  later lost still reports who it was next to ``tuneloop_gpu_lost`` = 1.
- Partial failure stays partial: a field NVML cannot answer is skipped and counted in
  ``tuneloop_gpu_field_errors_total``; a lost GPU stops only its own series. Only a node where
  NVML answers nothing (no library, no driver, no GPUs) raises CollectorError.
- Process attribution needs host PIDs (the agent runs with ``hostPID: true``): NVML reports
  PIDs of the host's namespace, and ``{procfs}/<pid>/cgroup`` is read for the pod.
- Device metrics carry the workload holding the device (``namespace``, ``pod``, ``container``)
  from one pod-resources listing per refresh: the GPU's UUID, or for a per-MIG series the MIG
  device's UUID, as the kubelet reports it; empty when no pod or several pods hold it. The
  per-process memory family (with ``pid``) is exported only with ``process_metrics``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pynvml
from prometheus_client.core import Metric

from agent.collectors.base import Collector, CollectorError
from agent.collectors.gpu_device import GpuLost, Samples, call, read_telemetry
from agent.collectors.gpu_events import XidWatcher
from agent.collectors.gpu_gpm import GpmReader
from agent.collectors.gpu_numa import gpu_numa_node
from agent.collectors.gpu_signals import read_signals
from agent.nvml.api import NvmlLike
from agent.placement import GpuProcess
from agent.podattr.resolver import PodIdentity, PodResolver, device_owner
from tuneloop.catalog import gpu as cat
from tuneloop.catalog import gpu_signals
from tuneloop.catalog.base import MetricSpec

_FAMILIES: tuple[MetricSpec, ...] = (*cat.SPECS, *gpu_signals.SPECS)
_MIG_DEVICE_SPECS = frozenset({cat.GPU_MIG_MEMORY_USED, cat.GPU_MIG_MEMORY_TOTAL})
_Holders = dict[str, list[tuple[str, str, str]]]


@dataclass(frozen=True)
class GpuIdentity:
    """Who a GPU is; read once."""

    uuid: str
    name: str
    pci_bus_id: str
    numa_node: int | None


class GpuCollector(Collector):
    """Exports NVML metrics per GPU; see the module docstring for the failure rules."""

    name = "gpu"

    def __init__(
        self,
        nvml: NvmlLike,
        sysfs: Path,
        procfs: Path,
        pod_resolver: PodResolver | None = None,
        clock: Callable[[], float] = time.time,
        process_metrics: bool = False,
    ) -> None:
        super().__init__()
        self.nvml = nvml
        self.sysfs = sysfs
        self.procfs = procfs
        self.pod_resolver = pod_resolver
        self.clock = clock
        self.process_metrics = process_metrics
        self._identities: dict[int, GpuIdentity] = {}
        self._field_errors: dict[tuple[str, str, str], int] = {}
        self._xids = XidWatcher(nvml, clock)
        self._gpm = GpmReader(nvml)
        self._processes: tuple[GpuProcess, ...] = ()
        self._scrape_lock = threading.Lock()  # one scrape at a time (a hung one blocks the next)
        self._processes_lock = threading.Lock()  # never held across NVML calls

    # -- public -----------------------------------------------------------------------------

    def processes(self) -> list[GpuProcess]:
        """GPU processes seen in the last refresh, with their pods where known."""
        with self._processes_lock:
            return list(self._processes)

    def close(self) -> None:
        """Free NVML resources held by the collector (the XID event set, GPM samples)."""
        self._xids.close()
        self._gpm.close()

    # -- scrape -----------------------------------------------------------------------------

    def scrape(self) -> Iterable[Metric]:
        """Read every GPU; raise CollectorError only when NVML answers nothing."""
        try:
            count = int(self.nvml.nvmlDeviceGetCount())
        except pynvml.NVMLError as err:
            raise CollectorError(f"NVML cannot count GPUs: {err}") from None
        if count == 0:
            raise CollectorError("NVML reports no GPUs on this node")
        out: Samples = {}
        gpu_procs: list[tuple[str, str, int, int | None]] = []  # (gpu, uuid, pid, bytes)
        with self._scrape_lock:
            for index in range(count):
                self._read_gpu(index, out, gpu_procs)
            self._xids.drain()
            for (gpu, xid), n in sorted(self._xids.counts.items()):
                out.setdefault(cat.GPU_XID_ERRORS, []).append(([gpu, str(xid)], float(n)))
                seen = self._xids.last_seen[(gpu, xid)]
                out.setdefault(cat.GPU_XID_LAST_SEEN, []).append(([gpu, str(xid)], seen))
            for (gpu, field, error), n in sorted(self._field_errors.items()):
                out.setdefault(cat.GPU_FIELD_ERRORS, []).append(([gpu, field, error], float(n)))
            holders = self.pod_resolver.holders() if self.pod_resolver is not None else {}
            processes = tuple(self._attribute(gpu_procs, holders, out))
            self._label_workloads(out, holders)
        with self._processes_lock:
            self._processes = processes
        families = []
        for spec in _FAMILIES:
            if spec in out:
                family = spec.family()
                for labels, value in out[spec]:
                    family.add_metric(labels, value)
                families.append(family)
        return families

    def _skip(self, gpu: str) -> Callable[[str, str], None]:
        def on_skip(field: str, error: str) -> None:
            key = (gpu, field, error)
            self._field_errors[key] = self._field_errors.get(key, 0) + 1

        return on_skip

    def _read_gpu(
        self, index: int, out: Samples, procs: list[tuple[str, str, int, int | None]]
    ) -> None:
        gpu = str(index)
        on_skip = self._skip(gpu)
        lost = False
        ident: GpuIdentity | None = None
        found: list[Any] | None = None
        try:
            handle = call(on_skip, "handle", self.nvml.nvmlDeviceGetHandleByIndex, index)
            if handle is None:
                return
            ident = self._identity(index, handle, on_skip)
            self._add_info(gpu, ident, out)
            read_telemetry(self.nvml, handle, gpu, out, on_skip)
            read_signals(self.nvml, handle, gpu, out, on_skip)
            self._gpm.read(gpu, handle, out, on_skip)
            found = call(
                on_skip, "processes", self.nvml.nvmlDeviceGetComputeRunningProcesses, handle
            )
            self._xids.register(gpu, handle, on_skip)
        except GpuLost:
            lost = True
            self._gpm.forget(gpu)
            for values in out.values():  # drop the partial readings of this GPU
                values[:] = [s for s in values if s[0][0] != gpu]
            self._add_info(gpu, self._identities.get(index), out)
        out.setdefault(cat.GPU_LOST, []).append(([gpu], 1.0 if lost else 0.0))
        if lost or ident is None:
            return
        if found is not None:
            out.setdefault(cat.GPU_PROCESSES, []).append(([gpu], float(len(found))))
            for proc in found:
                used = proc.usedGpuMemory
                procs.append((gpu, ident.uuid, int(proc.pid), None if used is None else int(used)))

    def _identity(
        self, index: int, handle: Any, on_skip: Callable[[str, str], None]
    ) -> GpuIdentity:
        cached = self._identities.get(index)
        if cached is not None:
            return cached
        uuid = call(on_skip, "uuid", self.nvml.nvmlDeviceGetUUID, handle)
        name = call(on_skip, "name", self.nvml.nvmlDeviceGetName, handle)
        pci = call(on_skip, "pci_info", self.nvml.nvmlDeviceGetPciInfo, handle)
        bus_id = str(pci.busId) if pci is not None else ""
        numa = gpu_numa_node(self.sysfs, self.nvml, handle, bus_id) if bus_id else None
        ident = GpuIdentity(str(uuid or ""), str(name or ""), bus_id, numa)
        if uuid is not None and name is not None and pci is not None:
            self._identities[index] = ident
        return ident

    @staticmethod
    def _add_info(gpu: str, ident: GpuIdentity | None, out: Samples) -> None:
        ident = ident or GpuIdentity("", "", "", None)
        numa = "-1" if ident.numa_node is None else str(ident.numa_node)
        labels = [gpu, ident.uuid, ident.name, ident.pci_bus_id, numa]
        out.setdefault(cat.GPU_INFO, []).append((labels, 1.0))

    def _label_workloads(self, out: Samples, holders: _Holders) -> None:
        """End every device series with the namespace, pod, container holding its device."""
        uuids = {str(i): ident.uuid for i, ident in self._identities.items()}
        for spec, values in out.items():
            if spec.scrape_meaning != cat.WORKLOAD_LABELS:
                continue
            for labels, _ in values:
                uuid = labels[2] if spec in _MIG_DEVICE_SPECS else uuids.get(labels[0], "")
                who = device_owner(holders, uuid) if uuid else PodIdentity()
                labels.extend((who.namespace, who.pod, who.container))

    def _attribute(
        self, procs: list[tuple[str, str, int, int | None]], holders: _Holders, out: Samples
    ) -> list[GpuProcess]:
        idents: dict[int, PodIdentity] = {}
        if self.pod_resolver is not None and procs:
            pids = ((pid, uuid) for _, uuid, pid, _ in procs)
            idents = self.pod_resolver.resolve_all(pids, holders)
        numa = {str(i): ident.numa_node for i, ident in self._identities.items()}
        result = []
        for gpu, _, pid, used in procs:
            who = idents.get(pid, PodIdentity())
            result.append(
                GpuProcess(gpu, pid, numa.get(gpu), who.pod, who.namespace, who.container)
            )
            if used is not None and self.process_metrics:
                labels = [gpu, str(pid), who.pod, who.namespace, who.container]
                out.setdefault(cat.GPU_PROCESS_MEMORY, []).append((labels, float(used)))
        return result
