"""NVLink traffic and errors, PCIe replays, memory temperature and the video engines of one GPU.

- One ``nvmlDeviceGetFieldValues`` call reads the NVLink link count, the NVLink data counters
  over all links (``NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX`` / ``_RX`` with scopeId UINT_MAX:
  KiB of payload since driver load, protocol overhead excluded; they replace the deprecated
  ``nvmlDeviceGetNvLinkUtilizationCounter``) and the memory temperature
  (``NVML_FI_DEV_MEMORY_TEMP``: ``nvmlDeviceGetTemperature`` has only the GPU die sensor).
  Every field answers its own ``nvmlReturn``; a failing field is skipped and counted alone.
- NVLink errors: ``nvmlDeviceGetNvLinkErrorCounter`` for DL CRC flit, CRC data, replay and
  recovery on each active link (``nvmlDeviceGetNvLinkState``); a failing counter is skipped alone.
- ``nvmlDeviceGetPcieReplayCounter``; ``nvmlDeviceGetEncoderUtilization`` and
  ``...DecoderUtilization`` (percent over NVML's sampling period, exported as a ratio).
"""

from __future__ import annotations

from typing import Any

import pynvml

from agent.collectors.gpu_device import OnSkip, Samples, call, code_name
from agent.nvml.api import NvmlLike
from tuneloop.catalog import gpu_signals as cat
from tuneloop.catalog.base import MetricSpec

ALL_LINKS = 0xFFFFFFFF  # scopeId: the sum over every link
NVLINK_ERRORS = (
    (pynvml.NVML_NVLINK_ERROR_DL_CRC_FLIT, "crc_flit"),
    (pynvml.NVML_NVLINK_ERROR_DL_CRC_DATA, "crc_data"),
    (pynvml.NVML_NVLINK_ERROR_DL_REPLAY, "replay"),
    (pynvml.NVML_NVLINK_ERROR_DL_RECOVERY, "recovery"),
)
_LINK_COUNT = pynvml.NVML_FI_DEV_NVLINK_LINK_COUNT
_TX = pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX
_RX = pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX
# (field id, scope, spec or None, scale, field name for skips)
_FIELDS: tuple[tuple[int, int, MetricSpec | None, float, str], ...] = (
    (_LINK_COUNT, 0, None, 1.0, "nvlink"),
    (_TX, ALL_LINKS, cat.GPU_NVLINK_TRANSMIT, 1024.0, "nvlink_tx"),
    (_RX, ALL_LINKS, cat.GPU_NVLINK_RECEIVE, 1024.0, "nvlink_rx"),
    (pynvml.NVML_FI_DEV_MEMORY_TEMP, 0, cat.GPU_MEMORY_TEMPERATURE, 1.0, "memory_temperature"),
)
_UNION_MEMBER = {
    pynvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
}


def field_number(value: Any) -> float | None:
    """The number in a ``c_nvmlFieldValue_t`` by its value type; None for an unknown type."""
    member = _UNION_MEMBER.get(value.valueType)
    return None if member is None else float(getattr(value.value, member))


def read_signals(nvml: NvmlLike, handle: Any, gpu: str, out: Samples, on_skip: OnSkip) -> None:
    """Append the NVLink, PCIe replay, memory temperature and video engine readings."""

    def add(spec: MetricSpec, value: float, *extra: str) -> None:
        out.setdefault(spec, []).append(([gpu, *extra], float(value)))

    links = 0
    ids = [(field_id, scope) for field_id, scope, *_ in _FIELDS]
    values = call(on_skip, "field_values", nvml.nvmlDeviceGetFieldValues, handle, ids)
    for i, (_, _, spec, scale, field) in enumerate(_FIELDS if values is not None else ()):
        answer = values[i]
        number = field_number(answer)
        if answer.nvmlReturn != pynvml.NVML_SUCCESS:
            on_skip(field, code_name(answer.nvmlReturn))
        elif number is None:
            on_skip(field, "unknown")
        elif spec is None:
            links = int(number)
        else:
            add(spec, number * scale)
    for link in range(links):
        state = call(on_skip, "nvlink_state", nvml.nvmlDeviceGetNvLinkState, handle, link)
        if state != pynvml.NVML_FEATURE_ENABLED:
            continue
        for counter, name in NVLINK_ERRORS:
            read = nvml.nvmlDeviceGetNvLinkErrorCounter
            n = call(on_skip, "nvlink_errors", read, handle, link, counter)
            if n is not None:
                add(cat.GPU_NVLINK_ERRORS, n, str(link), name)
    replays = call(on_skip, "pcie_replays", nvml.nvmlDeviceGetPcieReplayCounter, handle)
    if replays is not None:
        add(cat.GPU_PCIE_REPLAYS, replays)
    for spec, field, fn in (
        (cat.GPU_ENCODER_UTILIZATION, "encoder", nvml.nvmlDeviceGetEncoderUtilization),
        (cat.GPU_DECODER_UTILIZATION, "decoder", nvml.nvmlDeviceGetDecoderUtilization),
    ):
        util = call(on_skip, field, fn, handle)
        if util is not None:
            add(spec, util[0] / 100)
