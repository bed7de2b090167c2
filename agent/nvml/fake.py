"""A fake NVML that answers like pynvml, from a fake-GPU file (see :mod:`agent.nvml.fake_spec`).

Faithfulness rules: the same function names and signatures as pynvml; the same return types
(pynvml's own ctypes structures, device and event-set handles that are real ``c_nvmlDevice_t``
/ ``c_nvmlEventSet_t`` pointers, never dereferenced); the same errors, raised as
``pynvml.NVMLError(code)`` so callers catch pynvml's subclasses. Calls before ``nvmlInit`` answer
NVML_ERROR_UNINITIALIZED; an unknown handle answers NVML_ERROR_INVALID_ARGUMENT; a lost GPU
answers NVML_ERROR_GPU_IS_LOST to every call, ``nvmlDeviceGetHandleByIndex`` included (as
``nvidia-smi``'s "Unable to determine the device handle ... GPU is lost" shows).

GPM, field values, NVLink and the video engines live in :mod:`agent.nvml.fake_signals`.
The control methods at the end (``inject_xid``, ``set_lost``, ``set_error``, and ``set_gpm``)
change the fake's state between refreshes, the way a real GPU changes under the agent.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pynvml

from agent.nvml.fake_signals import FakeSignalsMixin
from agent.nvml.fake_spec import FakeDevice, FakeSystem, error_code, load_fake_system

_DEVICE_BASE = 0x10_0000
_MIG_BASE = 0x20_0000
_EVENT_SET_BASE = 0x30_0000
_NO_INSTANCE = 0xFFFFFFFF


def _raise(code: int) -> NoReturn:
    raise pynvml.NVMLError(code)


def _pointer(address: int, kind: Any) -> Any:
    return ctypes.cast(ctypes.c_void_p(address), kind)


def _address(handle: Any) -> int | None:
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value
    except (ctypes.ArgumentError, TypeError):
        return None


class FakeNvml(FakeSignalsMixin):
    """pynvml look-alike over a :class:`FakeSystem`; ``clock`` paces the GPM counters."""

    def __init__(self, system: FakeSystem, clock: Callable[[], float] = time.monotonic) -> None:
        self.system = system
        self.clock = clock
        self._lock = threading.RLock()
        self._initialised = 0
        self._event_sets: dict[int, dict[int, int]] = {}  # set address -> device index -> mask
        self._next_event_set = _EVENT_SET_BASE
        self._init_signals()

    @classmethod
    def from_file(cls, path: Path) -> FakeNvml:
        """A fake over the devices described in ``path``."""
        return cls(load_fake_system(path))

    # -- plumbing ---------------------------------------------------------------------------

    def _module_call(self, name: str) -> None:
        if name != "nvmlInit" and not self._initialised:
            _raise(pynvml.NVML_ERROR_UNINITIALIZED)
        if name in self.system.errors:
            _raise(self.system.errors[name])

    def _device_call(self, name: str, handle: Any) -> FakeDevice:
        self._module_call(name)
        address = _address(handle)
        index = None if address is None else address - _DEVICE_BASE
        if index is None or not 0 <= index < len(self.system.devices):
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._answer(name, self.system.devices[index])

    def _answer(self, name: str, dev: FakeDevice) -> FakeDevice:
        seconds = dev.hang.get(name)
        if seconds:
            time.sleep(seconds)
        if dev.lost:
            _raise(pynvml.NVML_ERROR_GPU_IS_LOST)
        if name in dev.errors:
            _raise(dev.errors[name])
        return dev

    def _mig_call(self, name: str, handle: Any) -> tuple[FakeDevice, int] | None:
        """The parent device and MIG slot of a MIG handle, or None for a full-GPU handle."""
        address = _address(handle)
        if address is None or address < _MIG_BASE or address >= _EVENT_SET_BASE:
            return None
        self._module_call(name)
        parent, slot = divmod(address - _MIG_BASE, 0x100)
        if parent >= len(self.system.devices):
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        dev = self._answer(name, self.system.devices[parent])
        if slot >= len(dev.mig_devices):
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return dev, slot

    @staticmethod
    def _supported(value: Any) -> Any:
        if value is None:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    # -- system -----------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        with self._lock:
            self._module_call("nvmlInit")
            self._initialised += 1

    def nvmlShutdown(self) -> None:
        with self._lock:
            self._module_call("nvmlShutdown")
            self._initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._module_call("nvmlSystemGetDriverVersion")
        return self.system.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._module_call("nvmlDeviceGetCount")
        return len(self.system.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        self._module_call("nvmlDeviceGetHandleByIndex")
        if not isinstance(index, int) or not 0 <= index < len(self.system.devices):
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._answer("nvmlDeviceGetHandleByIndex", self.system.devices[index])
        return _pointer(_DEVICE_BASE + index, pynvml.c_nvmlDevice_t)

    # -- identity ---------------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._device_call("nvmlDeviceGetName", handle).name

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        mig = self._mig_call("nvmlDeviceGetUUID", handle)
        if mig:
            return mig[0].mig_devices[mig[1]].uuid
        return self._device_call("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:
        dev = self._device_call("nvmlDeviceGetPciInfo", handle)
        domain, bus, rest = dev.pci_bus_id.split(":")
        device = rest.split(".")[0]
        info = pynvml.nvmlPciInfo_t()
        info.busIdLegacy = dev.pci_bus_id[-12:]
        info.busId = dev.pci_bus_id
        info.domain, info.bus, info.device = int(domain, 16), int(bus, 16), int(device, 16)
        info.pciDeviceId = 0x233010DE
        return info

    def nvmlDeviceGetCpuAffinity(self, handle: Any, cpuSetSize: int) -> Any:
        dev = self._device_call("nvmlDeviceGetCpuAffinity", handle)
        cpus = self._supported(dev.cpu_affinity)
        words = (ctypes.c_ulonglong * cpuSetSize)()
        for cpu in cpus:
            if cpu // 64 < cpuSetSize:
                words[cpu // 64] |= 1 << (cpu % 64)
        return words

    # -- telemetry --------------------------------------------------------------------------

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: int | None = None) -> Any:
        if version:
            _raise(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)  # the fake models the v1 struct only
        mig = self._mig_call("nvmlDeviceGetMemoryInfo", handle)
        if mig:
            m = mig[0].mig_devices[mig[1]]
            total, used = m.memory_total, m.memory_used
        else:
            dev = self._device_call("nvmlDeviceGetMemoryInfo", handle)
            total, used = dev.memory_total, dev.memory_used
        return pynvml.c_nvmlMemory_t(total=total, free=total - used, used=used)

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        dev = self._device_call("nvmlDeviceGetUtilizationRates", handle)
        gpu, memory = self._supported(dev.utilization)
        return pynvml.c_nvmlUtilization_t(gpu=gpu, memory=memory)

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        dev = self._device_call("nvmlDeviceGetPowerUsage", handle)
        return int(self._supported(dev.power_mw))

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        dev = self._device_call("nvmlDeviceGetTotalEnergyConsumption", handle)
        return int(self._supported(dev.energy_mj))

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        dev = self._device_call("nvmlDeviceGetTemperature", handle)
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return int(self._supported(dev.temperature_c))

    def nvmlDeviceGetClockInfo(self, handle: Any, type: int) -> int:
        dev = self._device_call("nvmlDeviceGetClockInfo", handle)
        return int(self._supported(dev.clocks_mhz.get(type)))

    def nvmlDeviceGetPcieThroughput(self, device: Any, counter: int) -> int:
        dev = self._device_call("nvmlDeviceGetPcieThroughput", device)
        if counter not in (pynvml.NVML_PCIE_UTIL_TX_BYTES, pynvml.NVML_PCIE_UTIL_RX_BYTES):
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return int(self._supported(dev.pcie_kbps.get(counter)))

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int:
        dev = self._device_call("nvmlDeviceGetCurrentClocksEventReasons", handle)
        return int(self._supported(dev.throttle_reasons))

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any) -> int:
        dev = self._device_call("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        return int(self._supported(dev.throttle_reasons))

    def nvmlDeviceGetTotalEccErrors(self, handle: Any, errorType: int, counterType: int) -> int:
        dev = self._device_call("nvmlDeviceGetTotalEccErrors", handle)
        return int(self._supported(dev.ecc.get((errorType, counterType))))

    def nvmlDeviceGetRemappedRows(self, device: Any) -> tuple[int, int, int, int]:
        dev = self._device_call("nvmlDeviceGetRemappedRows", device)
        rows: tuple[int, int, int, int] = self._supported(dev.remapped_rows)
        return rows

    # -- MIG --------------------------------------------------------------------------------

    def nvmlDeviceGetMigMode(self, device: Any) -> list[int]:
        dev = self._device_call("nvmlDeviceGetMigMode", device)
        mode = int(self._supported(dev.mig_enabled))
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, device: Any) -> int:
        dev = self._device_call("nvmlDeviceGetMaxMigDeviceCount", device)
        self._supported(dev.mig_enabled)
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: Any, index: int) -> Any:
        dev = self._device_call("nvmlDeviceGetMigDeviceHandleByIndex", device)
        if not dev.mig_enabled:
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if not 0 <= index < 7:
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if index >= len(dev.mig_devices):
            _raise(pynvml.NVML_ERROR_NOT_FOUND)
        parent = self.system.devices.index(dev)
        return _pointer(_MIG_BASE + parent * 0x100 + index, pynvml.c_nvmlDevice_t)

    # -- processes --------------------------------------------------------------------------

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:
        dev = self._device_call("nvmlDeviceGetComputeRunningProcesses", handle)
        return [
            pynvml.nvmlFriendlyObject(
                {
                    "pid": pid,
                    "usedGpuMemory": used,
                    "gpuInstanceId": _NO_INSTANCE,
                    "computeInstanceId": _NO_INSTANCE,
                }
            )
            for pid, used in dev.processes
        ]

    # -- events -----------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> Any:
        with self._lock:
            self._module_call("nvmlEventSetCreate")
            address = self._next_event_set
            self._next_event_set += 1
            self._event_sets[address] = {}
            return _pointer(address, pynvml.c_nvmlEventSet_t)

    def _event_set(self, event_set: Any) -> dict[int, int]:
        address = _address(event_set)
        if address is None or address not in self._event_sets:
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._event_sets[address]

    def nvmlDeviceRegisterEvents(self, handle: Any, eventTypes: int, eventSet: Any) -> None:
        with self._lock:
            dev = self._device_call("nvmlDeviceRegisterEvents", handle)
            registered = self._event_set(eventSet)
            index = self.system.devices.index(dev)
            registered[index] = registered.get(index, 0) | int(eventTypes)

    def nvmlEventSetWait_v2(self, eventSet: Any, timeoutms: int) -> Any:
        with self._lock:
            self._module_call("nvmlEventSetWait_v2")
            registered = self._event_set(eventSet)
            lost = False
            for index, mask in sorted(registered.items()):
                dev = self.system.devices[index]
                if dev.xid_events and mask & pynvml.nvmlEventTypeXidCriticalError:
                    data = pynvml.c_nvmlEventData_t()
                    data.device = _pointer(_DEVICE_BASE + index, pynvml.c_nvmlDevice_t)
                    data.eventType = pynvml.nvmlEventTypeXidCriticalError
                    data.eventData = dev.xid_events.pop(0)
                    data.gpuInstanceId = data.computeInstanceId = _NO_INSTANCE
                    return data
                lost = lost or dev.lost
        if lost:
            _raise(pynvml.NVML_ERROR_GPU_IS_LOST)
        time.sleep(max(0, timeoutms) / 1000)
        _raise(pynvml.NVML_ERROR_TIMEOUT)

    def nvmlEventSetFree(self, eventSet: Any) -> None:
        with self._lock:
            self._module_call("nvmlEventSetFree")
            self._event_set(eventSet)
            address = _address(eventSet)
            assert address is not None
            del self._event_sets[address]

    # -- control (test and lab use) ---------------------------------------------------------

    def inject_xid(self, index: int, xid: int) -> None:
        """Queue an XID event on device ``index``."""
        with self._lock:
            self.system.devices[index].xid_events.append(xid)

    def set_lost(self, index: int, lost: bool = True) -> None:
        """Make device ``index`` fall off the bus (or come back)."""
        with self._lock:
            self.system.devices[index].lost = lost

    def set_error(self, index: int, call: str, error: str | None) -> None:
        """Make ``call`` on device ``index`` fail with ``error`` (an NVML_ERROR_* name)."""
        with self._lock:
            errors = self.system.devices[index].errors
            if error is None:
                errors.pop(call, None)
            else:
                errors[call] = error_code(error, f"devices[{index}].errors.{call}")
