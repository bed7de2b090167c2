"""The fake NVML's GPM, field-value, NVLink and video engine calls (a mixin of FakeNvml).

GPM follows NVML's sample model: ``nvmlGpmSampleAlloc`` gives an opaque ``c_nvmlGpmSample_t``,
``nvmlGpmSampleGet`` snapshots the device's activity counters into it, and
``nvmlGpmMetricsGet`` turns two snapshots of one device into each metric's average over the time
between them, answering per metric in ``metrics[i].nvmlReturn``. The fake's counters accumulate
each metric's configured percentage over its clock, so the average is exact even across a
:meth:`set_gpm` change. A device without GPM answers ``isSupportedDevice = 0`` and
NVML_ERROR_NOT_SUPPORTED to ``nvmlGpmSampleGet``, like an Ampere or older GPU.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import pynvml

from agent.nvml.fake_spec import FakeDevice, FakeSystem

_GPM_SAMPLE_BASE = 0x40_0000
_ALL_LINKS = 0xFFFFFFFF
_SAMPLING_PERIOD_US = 167_000


def _raise(code: int) -> NoReturn:
    raise pynvml.NVMLError(code)


def _address(handle: Any) -> int | None:
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value
    except (ctypes.ArgumentError, TypeError):
        return None


@dataclass
class _Snapshot:
    device: int
    at: float
    busy: dict[int, float]  # metric -> accumulated percent-seconds


class FakeSignalsMixin:
    """GPM, field values, NVLink, PCIe replays and video engines over a :class:`FakeSystem`."""

    system: FakeSystem
    clock: Callable[[], float]
    _lock: threading.RLock
    _gpm_samples: dict[int, _Snapshot | None]
    _gpm_busy: dict[int, tuple[float, dict[int, float]]]  # device -> (at, busy)
    _next_gpm_sample: int
    # The fake module's own call checks (an uninitialised library, a stale handle, an injected
    # error), provided by the class this mixes into.
    _device_call: Callable[[str, Any], FakeDevice]
    _module_call: Callable[[str], None]

    def _init_signals(self) -> None:
        self._gpm_samples = {}
        self._gpm_busy = {}
        self._next_gpm_sample = _GPM_SAMPLE_BASE

    # -- GPM --------------------------------------------------------------------------------

    def _advance(self, index: int) -> dict[int, float]:
        """Bring device ``index``'s activity counters up to now."""
        now = self.clock()
        at, busy = self._gpm_busy.get(index, (now, {}))
        rates = self.system.devices[index].signals.gpm or {}
        busy = {m: busy.get(m, 0.0) + rate * (now - at) for m, rate in rates.items()}
        self._gpm_busy[index] = (now, busy)
        return busy

    def nvmlGpmQueryDeviceSupport(self, device: Any) -> Any:
        dev = self._device_call("nvmlGpmQueryDeviceSupport", device)
        support = pynvml.c_nvmlGpmSupport_t()
        support.version = pynvml.NVML_GPM_SUPPORT_VERSION
        support.isSupportedDevice = 0 if dev.signals.gpm is None else 1
        return support

    def nvmlGpmSampleAlloc(self) -> Any:
        with self._lock:
            self._module_call("nvmlGpmSampleAlloc")
            address = self._next_gpm_sample
            self._next_gpm_sample += 1
            self._gpm_samples[address] = None
            return ctypes.cast(ctypes.c_void_p(address), pynvml.c_nvmlGpmSample_t)

    def _sample_address(self, sample: Any) -> int:
        address = _address(sample)
        if address is None or address not in self._gpm_samples:
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return address

    def nvmlGpmSampleFree(self, gpmSample: Any) -> None:
        with self._lock:
            self._module_call("nvmlGpmSampleFree")
            del self._gpm_samples[self._sample_address(gpmSample)]

    def nvmlGpmSampleGet(self, device: Any, gpmSample: Any) -> Any:
        with self._lock:
            dev = self._device_call("nvmlGpmSampleGet", device)
            address = self._sample_address(gpmSample)
            if dev.signals.gpm is None:
                _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
            index = self.system.devices.index(dev)
            busy = self._advance(index)
            self._gpm_samples[address] = _Snapshot(index, self._gpm_busy[index][0], dict(busy))
            return gpmSample

    def nvmlGpmMetricsGet(self, metricsGet: Any) -> Any:
        with self._lock:
            self._module_call("nvmlGpmMetricsGet")
            if metricsGet.version != pynvml.NVML_GPM_METRICS_GET_VERSION:
                _raise(pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
            if not 0 < metricsGet.numMetrics <= pynvml.NVML_GPM_METRIC_MAX:
                _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            first = self._gpm_samples.get(self._sample_address(metricsGet.sample1))
            second = self._gpm_samples.get(self._sample_address(metricsGet.sample2))
            if first is None or second is None or first.device != second.device:
                _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            if second.at <= first.at:
                _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            signals = self.system.devices[first.device].signals
            for i in range(metricsGet.numMetrics):
                metric = metricsGet.metrics[i]
                code = signals.gpm_errors.get(metric.metricId)
                if code is None and metric.metricId not in second.busy:
                    code = pynvml.NVML_ERROR_NOT_SUPPORTED
                if code is not None:
                    metric.nvmlReturn, metric.value = code, 0.0
                    continue
                spent = second.busy[metric.metricId] - first.busy.get(metric.metricId, 0.0)
                metric.nvmlReturn = pynvml.NVML_SUCCESS
                metric.value = spent / (second.at - first.at)
            return metricsGet

    # -- field values -----------------------------------------------------------------------

    def nvmlDeviceGetFieldValues(self, handle: Any, fieldIds: list[Any]) -> Any:
        dev = self._device_call("nvmlDeviceGetFieldValues", handle)
        values = (pynvml.c_nvmlFieldValue_t * len(fieldIds))()
        for i, field_id in enumerate(fieldIds):
            scope = 0
            if isinstance(field_id, tuple):
                field_id, scope = field_id
            out = values[i]
            out.fieldId, out.scopeId = field_id, scope
            out.timestamp = int(self.clock() * 1e6)
            answer = self._field(dev, field_id, scope)
            if isinstance(answer, tuple):
                out.nvmlReturn = pynvml.NVML_SUCCESS
                out.valueType = answer[0]
                if answer[0] == pynvml.NVML_VALUE_TYPE_UNSIGNED_INT:
                    out.value.uiVal = answer[1]
                else:
                    out.value.ullVal = answer[1]
            else:
                out.nvmlReturn = answer
        return values

    @staticmethod
    def _field(dev: FakeDevice, field_id: int, scope: int) -> tuple[int, int] | int:
        """(value type, value), or the error code the field answers."""
        sig = dev.signals
        if field_id in sig.field_errors:
            return sig.field_errors[field_id]
        uint, ull = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
        link = sig.nvlink
        value: int | None = None
        kind = uint
        if field_id == pynvml.NVML_FI_DEV_MEMORY_TEMP:
            value = sig.memory_temperature_c
        elif field_id == pynvml.NVML_FI_DEV_PCIE_REPLAY_COUNTER:
            value = sig.pcie_replays
        elif field_id == pynvml.NVML_FI_DEV_NVLINK_LINK_COUNT and link is not None:
            value = link.links
        elif field_id in (
            pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX,
            pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX,
        ):
            kind = ull
            tx = field_id == pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX
            total = None if link is None else (link.tx_kib if tx else link.rx_kib)
            if total is not None and link is not None:
                active = link.links - len(link.down)
                if scope == _ALL_LINKS:
                    value = total
                elif scope >= link.links:
                    return pynvml.NVML_ERROR_INVALID_ARGUMENT
                else:  # the fake spreads the total evenly over the active links
                    value = 0 if scope in link.down or not active else total // active
        if value is None:
            return pynvml.NVML_ERROR_NOT_SUPPORTED
        return kind, value

    # -- NVLink -----------------------------------------------------------------------------

    def _link(self, name: str, device: Any, link: int) -> FakeDevice:
        dev = self._device_call(name, device)
        if dev.signals.nvlink is None:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if not 0 <= link < dev.signals.nvlink.links:
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return dev

    def nvmlDeviceGetNvLinkState(self, device: Any, link: int) -> int:
        nvlink = self._link("nvmlDeviceGetNvLinkState", device, link).signals.nvlink
        assert nvlink is not None
        return pynvml.NVML_FEATURE_DISABLED if link in nvlink.down else pynvml.NVML_FEATURE_ENABLED

    def nvmlDeviceGetNvLinkErrorCounter(self, device: Any, link: int, counter: int) -> int:
        nvlink = self._link("nvmlDeviceGetNvLinkErrorCounter", device, link).signals.nvlink
        assert nvlink is not None
        if not 0 <= counter < pynvml.NVML_NVLINK_ERROR_COUNT:
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        code = nvlink.error_codes.get((link, counter))
        if code is not None:
            _raise(code)
        return nvlink.errors.get((link, counter), 0)

    # -- PCIe and video engines -------------------------------------------------------------

    def nvmlDeviceGetPcieReplayCounter(self, handle: Any) -> int:
        dev = self._device_call("nvmlDeviceGetPcieReplayCounter", handle)
        return _supported(dev.signals.pcie_replays)

    def nvmlDeviceGetEncoderUtilization(self, handle: Any) -> list[int]:
        dev = self._device_call("nvmlDeviceGetEncoderUtilization", handle)
        return [_supported(dev.signals.encoder_util), _SAMPLING_PERIOD_US]

    def nvmlDeviceGetDecoderUtilization(self, handle: Any) -> list[int]:
        dev = self._device_call("nvmlDeviceGetDecoderUtilization", handle)
        return [_supported(dev.signals.decoder_util), _SAMPLING_PERIOD_US]

    # -- control ----------------------------------------------------------------------------

    def set_gpm(self, index: int, metric: int, percent: float) -> None:
        """Change one GPM metric's activity on device ``index`` from now on."""
        with self._lock:
            self._advance(index)
            gpm = self.system.devices[index].signals.gpm
            if gpm is None:
                raise ValueError(f"device {index} has no GPM")
            gpm[metric] = percent


def _supported(value: int | None) -> int:
    if value is None:
        _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
    return value
