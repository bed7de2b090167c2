"""The fake-GPU file's profiling and interconnect sections: GPM, NVLink, field values, engines.

Keys of a device (each optional; left out means NOT_SUPPORTED, as elsewhere in the file):

- ``gpm``: GPM metrics by the suffix of their ``NVML_GPM_METRIC_*`` name (``sm_util``,
  ``any_tensor_util``...), each a steady percentage or an ``NVML_ERROR_*`` name that metric
  answers. A device with ``gpm`` supports GPM (Hopper and later); without, it does not.
- ``nvlink``: ``links`` (the link count), ``down`` (inactive links), ``tx_kib`` / ``rx_kib``
  (data throughput counters over all links, KiB) and ``errors`` (link -> ``crc_flit``,
  ``crc_data``, ``replay``, ``recovery`` -> a count or an ``NVML_ERROR_*`` name).
- ``memory_temperature_c``, ``pcie_replays``, ``encoder_util`` / ``decoder_util`` (percent).
- ``field_errors``: ``NVML_FI_*`` name -> ``NVML_ERROR_*`` name that field answers in
  ``nvmlDeviceGetFieldValues``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pynvml

from tuneloop import validation as v

SIGNAL_KEYS = {
    "gpm",
    "nvlink",
    "memory_temperature_c",
    "pcie_replays",
    "encoder_util",
    "decoder_util",
    "field_errors",
}
NVLINK_ERRORS = {
    "crc_flit": pynvml.NVML_NVLINK_ERROR_DL_CRC_FLIT,
    "crc_data": pynvml.NVML_NVLINK_ERROR_DL_CRC_DATA,
    "replay": pynvml.NVML_NVLINK_ERROR_DL_REPLAY,
    "recovery": pynvml.NVML_NVLINK_ERROR_DL_RECOVERY,
}
_U32 = 2**32 - 1
_U64 = 2**64 - 1


@dataclass
class FakeNvLink:
    """A device's NVLinks; counts or error codes per (link, NVML_NVLINK_ERROR_*)."""

    links: int
    down: set[int] = field(default_factory=set)
    tx_kib: int | None = None
    rx_kib: int | None = None
    errors: dict[tuple[int, int], int] = field(default_factory=dict)
    error_codes: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass
class FakeSignals:
    """What a device answers for GPM, NVLink, field values and the video engines."""

    gpm: dict[int, float] | None = None  # NVML_GPM_METRIC_* -> percent; None: no GPM
    gpm_errors: dict[int, int] = field(default_factory=dict)  # metric -> NVML error code
    nvlink: FakeNvLink | None = None
    memory_temperature_c: int | None = None
    pcie_replays: int | None = None
    encoder_util: int | None = None
    decoder_util: int | None = None
    field_errors: dict[int, int] = field(default_factory=dict)  # NVML_FI_* -> error code


def _code(value: str, f: str) -> int:
    code = getattr(pynvml, value, None) if value.startswith("NVML_ERROR_") else None
    if not isinstance(code, int):
        v.fail(f, f"must name an NVML error like NVML_ERROR_NOT_SUPPORTED, got {value!r}")
    return code


def _constant(prefix: str, key: str, f: str) -> int:
    code = getattr(pynvml, prefix + key.upper(), None)
    if not isinstance(code, int):
        v.fail(f, f"no {prefix}{key.upper()} in NVML")
    return code


def parse_signals(d: Mapping[str, Any], f: str) -> FakeSignals:
    """The signal sections of one device mapping (already checked for unknown keys)."""
    sig = FakeSignals()
    if "gpm" in d:
        sig.gpm = {}
        for key, value in v.mapping(d["gpm"], v.join(f, "gpm")).items():
            g = v.join(f, f"gpm.{key}")
            metric = _constant("NVML_GPM_METRIC_", key, g)
            if isinstance(value, str):
                sig.gpm_errors[metric] = _code(value, g)
            else:
                sig.gpm[metric] = v.number(value, g, minimum=0, maximum=100)
    if "nvlink" in d:
        sig.nvlink = _nvlink(d["nvlink"], v.join(f, "nvlink"))
    for key in ("memory_temperature_c", "pcie_replays"):
        if key in d:
            setattr(sig, key, v.integer(d[key], v.join(f, key), minimum=0, maximum=_U32))
    for key in ("encoder_util", "decoder_util"):
        if key in d:
            setattr(sig, key, v.integer(d[key], v.join(f, key), minimum=0, maximum=100))
    for key, value in v.mapping(d.get("field_errors", {}), v.join(f, "field_errors")).items():
        g = v.join(f, f"field_errors.{key}")
        if not key.startswith("NVML_FI_"):
            v.fail(g, "must name an NVML field like NVML_FI_DEV_MEMORY_TEMP")
        sig.field_errors[_constant("", key, g)] = _code(v.string(value, g), g)
    return sig


def _nvlink(raw: Any, f: str) -> FakeNvLink:
    d = v.mapping(raw, f)
    v.no_unknown_keys(d, f, {"links", "down", "tx_kib", "rx_kib", "errors"})
    links = v.integer(d.get("links"), v.join(f, "links"), minimum=0, maximum=72)
    link = FakeNvLink(links=links)
    down = d.get("down", [])
    if not isinstance(down, list):
        v.fail(v.join(f, "down"), "must be a list of link numbers")
    link.down = {
        v.integer(n, v.join(f, f"down[{i}]"), minimum=0, maximum=links - 1)
        for i, n in enumerate(down)
    }
    for key in ("tx_kib", "rx_kib"):
        if key in d:
            setattr(link, key, v.integer(d[key], v.join(f, key), minimum=0, maximum=_U64))
    for n, counters in v.mapping(d.get("errors", {}), v.join(f, "errors")).items():
        g = v.join(f, f"errors.{n}")
        if not n.isdigit() or int(n) >= links:
            v.fail(g, f"must be a link number below {links}")
        entries = v.mapping(counters, g)
        v.no_unknown_keys(entries, g, set(NVLINK_ERRORS))
        for name, value in entries.items():
            slot = (int(n), NVLINK_ERRORS[name])
            if isinstance(value, str):
                link.error_codes[slot] = _code(value, v.join(g, name))
            else:
                link.errors[slot] = v.integer(value, v.join(g, name), minimum=0, maximum=_U64)
    return link
