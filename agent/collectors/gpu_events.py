"""XID events: one NVML event set for the agent's life, drained without blocking on each refresh.

Each GPU is registered for ``nvmlEventTypeXidCriticalError`` once (retried on later refreshes
while registration fails for a reason other than NOT_SUPPORTED). A refresh drains what is
pending with a zero timeout, at most ``limit`` events, so an XID storm cannot stall the
collector; the rest wait for the next refresh. Counts persist: the counter never goes back.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import Any

import pynvml

from agent.collectors.gpu_device import error_name
from agent.nvml.api import NvmlLike

log = logging.getLogger(__name__)


def handle_address(handle: Any) -> int | None:
    """The pointer value of an NVML handle (stable per device for the library's life)."""
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value
    except (ctypes.ArgumentError, TypeError):
        return None


class XidWatcher:
    """Registers GPUs for XID events and counts them per (gpu, xid)."""

    def __init__(self, nvml: NvmlLike, clock: Callable[[], float], limit: int = 256) -> None:
        self.nvml = nvml
        self.clock = clock
        self.limit = limit
        self.counts: dict[tuple[str, int], int] = {}
        self.last_seen: dict[tuple[str, int], float] = {}
        self._event_set: Any = None
        self._registered: dict[int, str] = {}  # handle address -> gpu label
        self._unsupported: set[str] = set()

    def register(self, gpu: str, handle: Any, on_skip: Callable[[str, str], None]) -> None:
        """Register one GPU unless done; skipped fields go to ``on_skip``."""
        address = handle_address(handle)
        if address is None or address in self._registered:
            return
        if gpu in self._unsupported:
            on_skip("xid_events", "not_supported")
            return
        try:
            if self._event_set is None:
                self._event_set = self.nvml.nvmlEventSetCreate()
            self.nvml.nvmlDeviceRegisterEvents(
                handle, pynvml.nvmlEventTypeXidCriticalError, self._event_set
            )
        except pynvml.NVMLError_NotSupported:
            self._unsupported.add(gpu)
            on_skip("xid_events", "not_supported")
            return
        except pynvml.NVMLError as err:  # GPU lost or transient: try again next refresh
            on_skip("xid_events", error_name(err))
            return
        self._registered[address] = gpu

    def drain(self) -> None:
        """Count the pending events, never waiting."""
        if self._event_set is None:
            return
        for _ in range(self.limit):
            try:
                data = self.nvml.nvmlEventSetWait_v2(self._event_set, 0)
            except (pynvml.NVMLError_Timeout, pynvml.NVMLError_GpuIsLost):
                return
            except pynvml.NVMLError as err:
                log.warning("draining NVML XID events failed: %s", err)
                return
            if not data.eventType & pynvml.nvmlEventTypeXidCriticalError:
                continue
            gpu = self._registered.get(handle_address(data.device) or 0)
            if gpu is None:
                continue
            key = (gpu, int(data.eventData))
            self.counts[key] = self.counts.get(key, 0) + 1
            self.last_seen[key] = self.clock()

    def close(self) -> None:
        """Free the event set."""
        if self._event_set is not None:
            try:
                self.nvml.nvmlEventSetFree(self._event_set)
            except pynvml.NVMLError as err:
                log.debug("freeing the NVML event set: %s", err)
            self._event_set = None
            self._registered.clear()
