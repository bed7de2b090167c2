"""The fake-GPU description file: JSON in, validated device records out.

Like dcgm-exporter's fake GPUs, a file describes what NVML would answer for each device. A field
left out means the device does not support it: the fake answers NVML_ERROR_NOT_SUPPORTED, as a
real GPU without that feature would. Error injection (``errors``, ``hang``, ``lost``) works per
device and per NVML function (per GPM metric, NVLink counter and field value in the sections of
:mod:`agent.nvml.fake_signals_spec`); a top-level ``errors`` map covers the module-level calls
(``nvmlInit``, ``nvmlDeviceGetCount``, ``nvmlEventSetWait_v2``...). Every mistake is a
ConfigError that names the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynvml

from agent.nvml.fake_signals_spec import SIGNAL_KEYS, FakeSignals, parse_signals
from tuneloop import validation as v

_DEVICE_KEYS = {
    "name",
    "uuid",
    "pci_bus_id",
    "memory",
    "utilization",
    "power_mw",
    "energy_mj",
    "temperature_c",
    "clocks_mhz",
    "pcie_kbps",
    "throttle_reasons",
    "ecc",
    "remapped_rows",
    "mig",
    "cpu_affinity",
    "processes",
    "xid_events",
    "errors",
    "hang",
    "lost",
    *SIGNAL_KEYS,
}
_U32 = 2**32 - 1
_U64 = 2**64 - 1


@dataclass
class FakeMigDevice:
    """One MIG device: its UUID and memory."""

    uuid: str
    memory_total: int
    memory_used: int


@dataclass
class FakeDevice:
    """What NVML answers for one GPU; ``None`` means NOT_SUPPORTED."""

    name: str
    uuid: str
    pci_bus_id: str
    memory_total: int
    memory_used: int
    utilization: tuple[int, int] | None = None  # (gpu %, memory %)
    power_mw: int | None = None
    energy_mj: int | None = None
    temperature_c: int | None = None
    clocks_mhz: dict[int, int] = field(default_factory=dict)  # NVML_CLOCK_* -> MHz
    pcie_kbps: dict[int, int] = field(default_factory=dict)  # NVML_PCIE_UTIL_* -> KB/s
    throttle_reasons: int | None = None
    ecc: dict[tuple[int, int], int] = field(default_factory=dict)  # (error type, counter) -> n
    remapped_rows: tuple[int, int, int, int] | None = None
    mig_enabled: bool | None = None  # None: not MIG-capable
    mig_devices: list[FakeMigDevice] = field(default_factory=list)
    cpu_affinity: list[int] | None = None
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, bytes)
    xid_events: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # function name -> NVML error code
    hang: dict[str, float] = field(default_factory=dict)  # function name -> seconds
    lost: bool = False
    signals: FakeSignals = field(default_factory=FakeSignals)


@dataclass
class FakeSystem:
    """The whole node: devices plus module-level error injection."""

    devices: list[FakeDevice]
    driver_version: str = "550.90.07"
    errors: dict[str, int] = field(default_factory=dict)


def load_fake_system(path: Path) -> FakeSystem:
    """Read and validate a fake-GPU file; errors name the file and the field."""
    try:
        raw = json.loads(path.read_text())
    except OSError as err:
        raise v.ConfigError(str(path), f"cannot read fake GPU file: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise v.ConfigError(str(path), f"not valid JSON: {err}") from None
    try:
        return parse_fake_system(raw)
    except v.ConfigError as err:
        raise v.ConfigError(f"{path}: {err.field}", err.reason) from None


def parse_fake_system(raw: Any) -> FakeSystem:
    """Validate an already-decoded fake-GPU document."""
    top = v.mapping(raw, "")
    v.no_unknown_keys(top, "", {"devices", "driver_version", "errors"})
    devices_raw = top.get("devices")
    if not isinstance(devices_raw, list):
        v.fail("devices", "must be a list of devices")
    devices = [_device(item, f"devices[{i}]") for i, item in enumerate(devices_raw)]
    system = FakeSystem(devices=devices, errors=_errors(top.get("errors", {}), "errors"))
    if "driver_version" in top:
        system.driver_version = v.string(top["driver_version"], "driver_version")
    return system


def error_code(value: Any, field_name: str) -> int:
    """An NVML error name such as ``NVML_ERROR_NOT_SUPPORTED`` as its code."""
    name = v.string(value, field_name)
    code = getattr(pynvml, name, None) if name.startswith("NVML_ERROR_") else None
    if not isinstance(code, int):
        v.fail(field_name, f"must name an NVML error like NVML_ERROR_NOT_SUPPORTED, got {name!r}")
    return code


def _errors(value: Any, field_name: str) -> dict[str, int]:
    entries = v.mapping(value, field_name)
    return {call: error_code(code, v.join(field_name, call)) for call, code in entries.items()}


def _u(value: Any, field_name: str, maximum: int = _U32) -> int:
    return v.integer(value, field_name, minimum=0, maximum=maximum)


def _percent(value: Any, field_name: str) -> int:
    return v.integer(value, field_name, minimum=0, maximum=100)


def _device(raw: Any, f: str) -> FakeDevice:
    d = v.mapping(raw, f)
    v.no_unknown_keys(d, f, _DEVICE_KEYS)
    for key in ("name", "uuid", "pci_bus_id", "memory"):
        if key not in d:
            v.fail(v.join(f, key), "is required")
    memory = v.mapping(d["memory"], v.join(f, "memory"))
    v.no_unknown_keys(memory, v.join(f, "memory"), {"total", "used"})
    dev = FakeDevice(
        name=v.string(d["name"], v.join(f, "name")),
        uuid=v.string(d["uuid"], v.join(f, "uuid")),
        pci_bus_id=v.string(d["pci_bus_id"], v.join(f, "pci_bus_id")),
        memory_total=_u(memory.get("total"), v.join(f, "memory.total"), _U64),
        memory_used=_u(memory.get("used", 0), v.join(f, "memory.used"), _U64),
        errors=_errors(d.get("errors", {}), v.join(f, "errors")),
        lost=v.boolean(d.get("lost", False), v.join(f, "lost")),
    )
    if dev.memory_used > dev.memory_total:
        v.fail(v.join(f, "memory.used"), f"must not exceed memory.total ({dev.memory_total})")
    if "utilization" in d:
        util = v.mapping(d["utilization"], v.join(f, "utilization"))
        v.no_unknown_keys(util, v.join(f, "utilization"), {"gpu", "memory"})
        dev.utilization = (
            _percent(util.get("gpu"), v.join(f, "utilization.gpu")),
            _percent(util.get("memory"), v.join(f, "utilization.memory")),
        )
    for key in ("power_mw", "temperature_c", "throttle_reasons"):
        if key in d:
            setattr(dev, key, _u(d[key], v.join(f, key), _U64))
    if "energy_mj" in d:
        dev.energy_mj = _u(d["energy_mj"], v.join(f, "energy_mj"), _U64)
    dev.clocks_mhz = _keyed(
        d, f, "clocks_mhz", {"sm": pynvml.NVML_CLOCK_SM, "mem": pynvml.NVML_CLOCK_MEM}
    )
    dev.pcie_kbps = _keyed(
        d,
        f,
        "pcie_kbps",
        {"tx": pynvml.NVML_PCIE_UTIL_TX_BYTES, "rx": pynvml.NVML_PCIE_UTIL_RX_BYTES},
    )
    if "ecc" in d:
        dev.ecc = _ecc(d["ecc"], v.join(f, "ecc"))
    if "remapped_rows" in d:
        dev.remapped_rows = _remapped(d["remapped_rows"], v.join(f, "remapped_rows"))
    if "mig" in d:
        _mig(dev, d["mig"], v.join(f, "mig"))
    if "cpu_affinity" in d:
        cpus = d["cpu_affinity"]
        if isinstance(cpus, str):
            cpus = _cpulist(cpus, v.join(f, "cpu_affinity"))
        if not isinstance(cpus, list):
            v.fail(v.join(f, "cpu_affinity"), "must be a CPU list like 0-55,112-167")
        dev.cpu_affinity = [
            v.integer(c, v.join(f, f"cpu_affinity[{i}]"), minimum=0, maximum=65535)
            for i, c in enumerate(cpus)
        ]
    dev.processes = _processes(d.get("processes", []), v.join(f, "processes"))
    xids = d.get("xid_events", [])
    if not isinstance(xids, list):
        v.fail(v.join(f, "xid_events"), "must be a list of XID codes")
    dev.xid_events = [_u(x, v.join(f, f"xid_events[{i}]")) for i, x in enumerate(xids)]
    hang = v.mapping(d.get("hang", {}), v.join(f, "hang"))
    dev.hang = {call: v.number(s, v.join(f, f"hang.{call}"), minimum=0) for call, s in hang.items()}
    dev.signals = parse_signals(d, f)
    return dev


def _keyed(d: Mapping[str, Any], f: str, key: str, names: dict[str, int]) -> dict[int, int]:
    if key not in d:
        return {}
    entries = v.mapping(d[key], v.join(f, key))
    v.no_unknown_keys(entries, v.join(f, key), set(names))
    return {names[k]: _u(val, v.join(f, f"{key}.{k}")) for k, val in entries.items()}


def _ecc(raw: Any, f: str) -> dict[tuple[int, int], int]:
    scopes = {"volatile": pynvml.NVML_VOLATILE_ECC, "aggregate": pynvml.NVML_AGGREGATE_ECC}
    kinds = {
        "corrected": pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
        "uncorrected": pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
    }
    out: dict[tuple[int, int], int] = {}
    top = v.mapping(raw, f)
    v.no_unknown_keys(top, f, set(scopes))
    for scope, counts in top.items():
        inner = v.mapping(counts, v.join(f, scope))
        v.no_unknown_keys(inner, v.join(f, scope), set(kinds))
        for kind, n in inner.items():
            out[(kinds[kind], scopes[scope])] = _u(n, f"{f}.{scope}.{kind}", _U64)
    return out


def _remapped(raw: Any, f: str) -> tuple[int, int, int, int]:
    rows = v.mapping(raw, f)
    v.no_unknown_keys(rows, f, {"correctable", "uncorrectable", "pending", "failure"})
    return (
        _u(rows.get("correctable", 0), v.join(f, "correctable")),
        _u(rows.get("uncorrectable", 0), v.join(f, "uncorrectable")),
        int(v.boolean(rows.get("pending", False), v.join(f, "pending"))),
        int(v.boolean(rows.get("failure", False), v.join(f, "failure"))),
    )


def _mig(dev: FakeDevice, raw: Any, f: str) -> None:
    mig = v.mapping(raw, f)
    v.no_unknown_keys(mig, f, {"enabled", "instances"})
    dev.mig_enabled = v.boolean(mig.get("enabled"), v.join(f, "enabled"))
    instances = mig.get("instances", [])
    if not isinstance(instances, list) or len(instances) > 7:
        v.fail(v.join(f, "instances"), "must be a list of at most 7 MIG devices")
    for i, item in enumerate(instances):
        g = f"{f}.instances[{i}]"
        inst = v.mapping(item, g)
        v.no_unknown_keys(inst, g, {"uuid", "memory"})
        mem = v.mapping(inst.get("memory"), v.join(g, "memory"))
        dev.mig_devices.append(
            FakeMigDevice(
                uuid=v.string(inst.get("uuid"), v.join(g, "uuid")),
                memory_total=_u(mem.get("total"), v.join(g, "memory.total"), _U64),
                memory_used=_u(mem.get("used", 0), v.join(g, "memory.used"), _U64),
            )
        )
    if dev.mig_devices and not dev.mig_enabled:
        v.fail(v.join(f, "instances"), "MIG devices need mig.enabled: true")


def _processes(raw: Any, f: str) -> list[tuple[int, int | None]]:
    if not isinstance(raw, list):
        v.fail(f, "must be a list of {pid, used_memory}")
    out: list[tuple[int, int | None]] = []
    for i, item in enumerate(raw):
        g = f"{f}[{i}]"
        proc = v.mapping(item, g)
        v.no_unknown_keys(proc, g, {"pid", "used_memory"})
        used = proc.get("used_memory")
        out.append(
            (
                v.integer(proc.get("pid"), v.join(g, "pid"), minimum=1),
                None if used is None else _u(used, v.join(g, "used_memory"), _U64),
            )
        )
    return out


def _cpulist(text: str, f: str) -> list[int]:
    cpus: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            v.fail(f, f"must be a CPU list like 0-55,112-167, got {text!r}")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus
