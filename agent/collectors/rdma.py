"""The rdma collector: port state, rate and counters of every device in /sys/class/infiniband.

Design decisions:

- Partial failure stays partial. A counter file that cannot be read, or holds something other
  than an unsigned integer (``N/A (no PMA)`` on some HCAs), is skipped and counted in
  ``tuneloop_rdma_stat_read_errors_total{device,port}``; the rest of the port and the device
  still export. (node_exporter drops the whole device on such a file.) An unreadable device
  directory or port list is counted in ``tuneloop_rdma_device_read_errors_total{device}``.
  Every skipped file is also counted by reason in ``tuneloop_collector_read_errors_total``, the
  counter every collector shares. Files are read through ``agent.hostfs``: a FIFO or device in
  place of a counter is refused without blocking, and a file is read up to a small bound.
  The error counters start at 0 for every device and port seen, so ``rate()`` works from the
  first failure.
- No /sys/class/infiniband at all is a node without RDMA: nothing is exported and the collection
  succeeds.
- ``port_xmit_data`` and ``port_rcv_data`` count 32-bit words ("octets divided by 4", IBA spec),
  so they are multiplied by 4 into bytes. Which file feeds which metric is the catalog's
  ``PORT_COUNTERS`` / ``HW_COUNTERS`` table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.collectors.base import Collector, CollectorError
from agent.hostfs import HostFileError, ReadErrors, read_text
from tuneloop.catalog import rdma as catalog
from tuneloop.catalog.base import MetricSpec

Families = dict[str, GaugeMetricFamily | CounterMetricFamily]

LANE_FACTOR = 4
_SCALE = {"port_xmit_data": LANE_FACTOR, "port_rcv_data": LANE_FACTOR}
_COUNTER_DIRS: tuple[tuple[str, dict[str, MetricSpec]], ...] = (
    ("counters", catalog.PORT_COUNTERS),
    ("hw_counters", catalog.HW_COUNTERS),
)
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*Gb/sec\b")
_STATE = re.compile(r"^\s*(\d+)\s*:\s*(\S.*?)\s*$")
_ACTIVE = 4  # IB_PORT_ACTIVE
_LINK_UP = 5  # physical state LinkUp


def parse_rate(text: str) -> float:
    """Bits per second of a port ``rate`` file such as ``200 Gb/sec (4X HDR)``."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"rate {text.strip()!r} is not like '200 Gb/sec (4X HDR)'")
    return float(match.group(1)) * 1e9


def parse_state(text: str) -> tuple[int, str]:
    """``(4, "ACTIVE")`` from a ``state`` or ``phys_state`` file reading ``4: ACTIVE``."""
    match = _STATE.match(text)
    if not match:
        raise ValueError(f"state {text.strip()!r} is not like '4: ACTIVE'")
    return int(match.group(1)), match.group(2)


class _Malformed(ValueError):
    """A file that was read but does not hold what its name promises."""


def _read(path: Path) -> str:
    return read_text(path).strip()


def _read_counter(path: Path) -> int:
    text = _read(path)
    if not text.isascii() or not text.isdigit():
        raise _Malformed(f"{text[:40]!r} is not an unsigned integer")
    return int(text)


class RdmaCollector(Collector):
    """Reads ``{sysfs}/class/infiniband/<device>/ports/<n>/``."""

    name = "rdma"

    def __init__(self, sysfs: Path) -> None:
        super().__init__()
        self.sysfs = Path(sysfs)
        self._counter_errors: dict[tuple[str, str], int] = {}
        self._device_errors: dict[str, int] = {}
        self.read_errors = ReadErrors(self.name)

    def scrape(self) -> Iterable[Metric]:
        """Families for every readable device and port; nothing when the node has no RDMA."""
        root = self.sysfs / "class" / "infiniband"
        try:
            devices = sorted(os.listdir(root))
        except FileNotFoundError:
            return []
        except OSError as err:
            raise CollectorError(f"cannot list RDMA devices in {root}: {err.strerror}") from None
        families: Families = {spec.name: spec.family() for spec in catalog.SPECS}
        for device in devices:
            self._device(root / device, families)
        errors = families[catalog.RDMA_COUNTER_READ_ERRORS.name]
        for (device, port), count in sorted(self._counter_errors.items()):
            errors.add_metric([device, port], float(count))
        device_errors = families[catalog.RDMA_DEVICE_READ_ERRORS.name]
        for device, count in sorted(self._device_errors.items()):
            device_errors.add_metric([device], float(count))
        return list(families.values())

    def _failed(self, path: Path, err: Exception, key: tuple[str, str] | str) -> None:
        if isinstance(err, HostFileError):
            reason = err.reason
        else:
            reason = "malformed" if isinstance(err, ValueError) else "unreadable"
        self.read_errors.count(reason, path, str(err))
        if isinstance(key, tuple):
            self._counter_errors[key] = self._counter_errors.get(key, 0) + 1
        else:
            self._device_errors[key] = self._device_errors.get(key, 0) + 1

    def _device(self, path: Path, families: Families) -> None:
        device = path.name
        self._device_errors.setdefault(device, 0)
        ports_dir = path / "ports"
        try:
            ports = sorted((p for p in os.listdir(ports_dir) if p.isdigit()), key=int)
        except OSError as err:
            self._failed(ports_dir, err, device)
            return
        info = []
        for name in ("hca_type", "fw_ver", "board_id"):
            try:
                info.append(_read(path / name))
            except HostFileError as err:
                if err.reason != "missing":  # not every driver has every file
                    self._failed(path / name, err, device)
                info.append("")
        families[catalog.RDMA_DEVICE_INFO.name].add_metric([device, *info], 1.0)
        for port in ports:
            self._port(ports_dir / port, device, port, families)

    def _port(self, path: Path, device: str, port: str, families: Families) -> None:
        key = (device, port)
        self._counter_errors.setdefault(key, 0)
        labels = [device, port]
        states: dict[str, str] = {}
        for name, spec, up in (
            ("state", catalog.RDMA_PORT_UP, _ACTIVE),
            ("phys_state", catalog.RDMA_PORT_PHYSICAL_UP, _LINK_UP),
        ):
            try:
                number, text = parse_state(_read(path / name))
            except (OSError, ValueError) as err:
                self._failed(path / name, err, key)
                states[name] = ""
                continue
            states[name] = text
            families[spec.name].add_metric(labels, 1.0 if number == up else 0.0)
        try:
            families[catalog.RDMA_PORT_RATE.name].add_metric(
                labels, parse_rate(_read(path / "rate")) / 8
            )
        except (OSError, ValueError) as err:
            self._failed(path / "rate", err, key)
        try:
            link_layer = _read(path / "link_layer")
        except OSError as err:
            self._failed(path / "link_layer", err, key)
            link_layer = ""
        families[catalog.RDMA_PORT_INFO.name].add_metric(
            [*labels, link_layer, states["state"], states["phys_state"]], 1.0
        )
        for dirname, table in _COUNTER_DIRS:
            self._counters(path / dirname, table, key, families)

    def _counters(
        self,
        path: Path,
        table: dict[str, MetricSpec],
        key: tuple[str, str],
        families: Families,
    ) -> None:
        try:
            names = sorted(os.listdir(path))
        except FileNotFoundError:
            return  # InfiniBand HCAs have no hw_counters; some drivers have no counters
        except OSError as err:
            self._failed(path, err, key)
            return
        for name in names:
            spec = table.get(name)
            if spec is None:
                continue
            try:
                value = _read_counter(path / name)
            except (OSError, ValueError) as err:
                self._failed(path / name, err, key)
                continue
            families[spec.name].add_metric(list(key), float(value * _SCALE.get(name, 1)))
