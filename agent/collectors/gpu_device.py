"""Read one GPU's telemetry from NVML into samples, converting to base units.

Conversions: utilization percent -> ratio; power mW -> W; energy mJ -> J; clocks MHz -> Hz;
PCIe throughput KB/s -> bytes/s with NVML's KB = 1024 bytes. A field answering an NVML error
(NOT_SUPPORTED, NO_PERMISSION, ...) is skipped, never exported as 0, and reported through the
``on_skip`` callback; GPU_IS_LOST aborts the device with :class:`GpuLost`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pynvml

from agent.nvml.api import NvmlLike
from tuneloop.catalog import gpu as cat
from tuneloop.catalog.base import MetricSpec

Samples = dict[MetricSpec, list[tuple[list[str], float]]]
OnSkip = Callable[[str, str], None]  # (field, error name)

# clock event (throttle) reasons, with the names exported in the `reason` label
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (pynvml.nvmlClocksEventReasonGpuIdle, "gpu_idle"),
    (pynvml.nvmlClocksEventReasonApplicationsClocksSetting, "applications_clocks_setting"),
    (pynvml.nvmlClocksEventReasonSwPowerCap, "sw_power_cap"),
    (pynvml.nvmlClocksEventReasonHwSlowdown, "hw_slowdown"),
    (pynvml.nvmlClocksEventReasonSyncBoost, "sync_boost"),
    (pynvml.nvmlClocksEventReasonSwThermalSlowdown, "sw_thermal_slowdown"),
    (pynvml.nvmlClocksEventReasonHwThermalSlowdown, "hw_thermal_slowdown"),
    (pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown, "hw_power_brake_slowdown"),
    (pynvml.nvmlClocksEventReasonDisplayClockSetting, "display_clock_setting"),
)
_ECC = (
    (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, "corrected"),
    (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, "uncorrected"),
)
_ECC_SCOPES = ((pynvml.NVML_VOLATILE_ECC, "volatile"), (pynvml.NVML_AGGREGATE_ECC, "aggregate"))
_ERROR_NAMES = {
    getattr(pynvml, n): n.removeprefix("NVML_ERROR_").lower()
    for n in dir(pynvml)
    if n.startswith("NVML_ERROR_")
}


class GpuLost(Exception):
    """The GPU answered NVML_ERROR_GPU_IS_LOST."""


def error_name(err: pynvml.NVMLError) -> str:
    """``not_supported``, ``no_permission``... for an NVMLError."""
    return _ERROR_NAMES.get(getattr(err, "value", None), "unknown")


def code_name(code: int) -> str:
    """``not_supported``... for an NVML return code (a per-field or per-metric answer)."""
    return _ERROR_NAMES.get(code, "unknown")


def call(on_skip: OnSkip, field: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``; None (and ``on_skip``) on an NVML error, GpuLost when the GPU is lost."""
    try:
        return fn(*args)
    except pynvml.NVMLError_GpuIsLost:
        raise GpuLost from None
    except pynvml.NVMLError as err:
        on_skip(field, error_name(err))
        return None


def read_telemetry(nvml: NvmlLike, handle: Any, gpu: str, out: Samples, on_skip: OnSkip) -> None:
    """Append every readable gauge and counter of one GPU to ``out``."""

    def add(spec: MetricSpec, value: float, *extra: str) -> None:
        out.setdefault(spec, []).append(([gpu, *extra], float(value)))

    mem = call(on_skip, "memory", nvml.nvmlDeviceGetMemoryInfo, handle)
    if mem is not None:
        add(cat.GPU_MEMORY_USED, mem.used)
        add(cat.GPU_MEMORY_TOTAL, mem.total)
    util = call(on_skip, "utilization", nvml.nvmlDeviceGetUtilizationRates, handle)
    if util is not None:
        add(cat.GPU_UTILIZATION, util.gpu / 100)
        add(cat.GPU_MEMORY_UTILIZATION, util.memory / 100)
    scalar: tuple[tuple[MetricSpec, str, Callable[..., Any], tuple[Any, ...], float], ...] = (
        (cat.GPU_POWER, "power", nvml.nvmlDeviceGetPowerUsage, (), 1e-3),
        (cat.GPU_ENERGY, "energy", nvml.nvmlDeviceGetTotalEnergyConsumption, (), 1e-3),
        (
            cat.GPU_TEMPERATURE,
            "temperature",
            nvml.nvmlDeviceGetTemperature,
            (pynvml.NVML_TEMPERATURE_GPU,),
            1.0,
        ),
        (cat.GPU_SM_CLOCK, "sm_clock", nvml.nvmlDeviceGetClockInfo, (pynvml.NVML_CLOCK_SM,), 1e6),
        (
            cat.GPU_MEMORY_CLOCK,
            "memory_clock",
            nvml.nvmlDeviceGetClockInfo,
            (pynvml.NVML_CLOCK_MEM,),
            1e6,
        ),
        (
            cat.GPU_PCIE_TRANSMIT,
            "pcie_tx",
            nvml.nvmlDeviceGetPcieThroughput,
            (pynvml.NVML_PCIE_UTIL_TX_BYTES,),
            1024.0,
        ),
        (
            cat.GPU_PCIE_RECEIVE,
            "pcie_rx",
            nvml.nvmlDeviceGetPcieThroughput,
            (pynvml.NVML_PCIE_UTIL_RX_BYTES,),
            1024.0,
        ),
    )
    for spec, field, fn, args, scale in scalar:
        value = call(on_skip, field, fn, handle, *args)
        if value is not None:
            add(spec, value * scale)
    reasons = _throttle_reasons(nvml, handle, on_skip)
    if reasons is not None:
        for bit, name in THROTTLE_REASONS:
            add(cat.GPU_THROTTLE_REASON, 1.0 if reasons & bit else 0.0, name)
    _read_ecc(nvml, handle, add, on_skip)
    rows = call(on_skip, "remapped_rows", nvml.nvmlDeviceGetRemappedRows, handle)
    if rows is not None:
        correctable, uncorrectable, pending, failure = rows
        add(cat.GPU_REMAPPED_ROWS, correctable, "correctable")
        add(cat.GPU_REMAPPED_ROWS, uncorrectable, "uncorrectable")
        add(cat.GPU_ROW_REMAP_PENDING, 1.0 if pending else 0.0)
        add(cat.GPU_ROW_REMAP_FAILED, 1.0 if failure else 0.0)
    _read_mig(nvml, handle, gpu, out, on_skip)


def _throttle_reasons(nvml: NvmlLike, handle: Any, on_skip: OnSkip) -> int | None:
    """Clock event reasons; drivers before 535 only have the older "throttle" name."""
    try:
        return int(nvml.nvmlDeviceGetCurrentClocksEventReasons(handle))
    except pynvml.NVMLError_FunctionNotFound:
        pass
    except pynvml.NVMLError_GpuIsLost:
        raise GpuLost from None
    except pynvml.NVMLError as err:
        on_skip("throttle_reasons", error_name(err))
        return None
    fn = nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    value = call(on_skip, "throttle_reasons", fn, handle)
    return None if value is None else int(value)


def _read_ecc(nvml: NvmlLike, handle: Any, add: Callable[..., None], on_skip: OnSkip) -> None:
    """All four ECC counters, or none (a GPU with ECC off answers NOT_SUPPORTED)."""
    values = []
    for kind, kind_name in _ECC:
        for scope, scope_name in _ECC_SCOPES:
            n = call(on_skip, "ecc", nvml.nvmlDeviceGetTotalEccErrors, handle, kind, scope)
            if n is None:
                return
            values.append((n, kind_name, scope_name))
    for n, kind_name, scope_name in values:
        add(cat.GPU_ECC_ERRORS, n, kind_name, scope_name)


def _read_mig(nvml: NvmlLike, handle: Any, gpu: str, out: Samples, on_skip: OnSkip) -> None:
    """MIG mode, and on MIG-enabled GPUs the MIG devices with their memory."""
    mode = call(on_skip, "mig", nvml.nvmlDeviceGetMigMode, handle)
    if mode is None:
        return
    enabled = mode[0] == pynvml.NVML_DEVICE_MIG_ENABLE
    out.setdefault(cat.GPU_MIG_ENABLED, []).append(([gpu], 1.0 if enabled else 0.0))
    if not enabled:
        return
    slots = call(on_skip, "mig", nvml.nvmlDeviceGetMaxMigDeviceCount, handle)
    if slots is None:
        return
    count = 0
    for slot in range(slots):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except pynvml.NVMLError_NotFound:
            continue
        except pynvml.NVMLError_GpuIsLost:
            raise GpuLost from None
        except pynvml.NVMLError as err:
            on_skip("mig", error_name(err))
            return
        count += 1
        uuid = call(on_skip, "mig_memory", nvml.nvmlDeviceGetUUID, mig)
        mem = call(on_skip, "mig_memory", nvml.nvmlDeviceGetMemoryInfo, mig)
        if uuid is not None and mem is not None:
            labels = [gpu, str(slot), uuid]
            out.setdefault(cat.GPU_MIG_MEMORY_USED, []).append((labels, float(mem.used)))
            out.setdefault(cat.GPU_MIG_MEMORY_TOTAL, []).append((labels, float(mem.total)))
    out.setdefault(cat.GPU_MIG_INSTANCES, []).append(([gpu], float(count)))
