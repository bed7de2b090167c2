"""The net collector: TCP counters from /proc/net/snmp and /proc/net/netstat, and net sysctls.

Design decisions:

- snmp and netstat hold tables as pairs of lines (``Tcp: RtoAlgorithm RtoMin ...`` then
  ``Tcp: 1 200 ...``). Columns are matched by name, never by position, because kernels add
  columns; a column the kernel lacks is simply not exported. A pair whose prefixes or column
  counts disagree, or a value that is not an integer, is a CollectorError naming the file and
  line: a wrong mount must not read as zero retransmits.
- netstat and the sysctls are optional, so a problem there drops only what it touches: a value
  that is not an integer drops that column's series, a malformed netstat drops netstat, a
  malformed, missing-in-part or unreadable sysctl drops that sysctl's series. Each is counted
  in ``tuneloop_collector_read_errors_total{collector="net",reason}`` and logged once.
- Files are read through ``agent.hostfs``: a FIFO in place of ``tcp_rmem`` is refused without
  blocking, and no file is read past a small bound.
- /proc/net is the network namespace of the reading process, so the agent runs with
  ``hostNetwork: true`` to see the node's TCP stack. Sysctls under /proc/sys/net are also per
  namespace; one that is absent (older kernel, namespaced view) is skipped, one that is malformed
  is an error.
- snmp is required (every Linux has it); netstat and each sysctl are optional.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client.core import Metric

from agent.collectors.base import Collector, CollectorError
from agent.hostfs import HostFileError, ReadErrors, read_text
from tuneloop.catalog import net as catalog
from tuneloop.catalog.base import MetricSpec

TRIPLE_FIELDS = ("min", "default", "max")


def parse_paired_tables(path: Path, errors: ReadErrors | None = None) -> dict[str, dict[str, int]]:
    """``{"Tcp": {"RetransSegs": 12, ...}, ...}`` from a /proc/net/snmp or netstat file.

    Without ``errors`` any bad value is a CollectorError; with it, a value that is not an
    integer is counted there and its column left out.
    """
    try:
        lines = read_text(path).splitlines()
    except HostFileError as err:
        raise CollectorError(f"cannot read {path}: {err}") from None
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    tables: dict[str, dict[str, int]] = {}
    if len(numbered) % 2:
        lineno, line = numbered[-1]
        raise CollectorError(f"{path}:{lineno}: header line without a value line: {line[:60]!r}")
    for (head_no, head), (value_no, values) in zip(numbered[::2], numbered[1::2], strict=True):
        prefix, sep, names_text = head.partition(":")
        value_prefix, value_sep, values_text = values.partition(":")
        if not sep or not prefix or " " in prefix.strip():
            raise CollectorError(
                f"{path}:{head_no}: expected 'Table: Column ...', got {head[:60]!r}"
            )
        if not value_sep or value_prefix != prefix:
            raise CollectorError(
                f"{path}:{value_no}: expected the values of {prefix!r}, got {values[:60]!r}"
            )
        names, numbers = names_text.split(), values_text.split()
        if len(names) != len(numbers):
            raise CollectorError(
                f"{path}:{value_no}: {prefix} has {len(names)} columns but {len(numbers)} values"
            )
        table: dict[str, int] = {}
        for name, number in zip(names, numbers, strict=True):
            try:
                table[name] = int(number)
            except ValueError:
                message = f"{path}:{value_no}: {prefix} {name} is {number!r}, not an integer"
                if errors is None:
                    raise CollectorError(message) from None
                errors.count("malformed", f"{path}:{prefix}:{name}", message)
        tables[prefix] = table
    return tables


def _read_sysctl(path: Path) -> list[str] | None:
    """The words of a sysctl; None when absent; CollectorError when unreadable or empty."""
    try:
        words = read_text(path).split()
    except HostFileError as err:
        if err.reason == "missing":
            return None
        raise CollectorError(f"cannot read {path}: {err}") from None
    if not words:
        raise CollectorError(f"{path}: empty")
    return words


def _int_values(path: Path, words: list[str], count: int) -> list[int]:
    if len(words) != count:
        raise CollectorError(f"{path}: expected {count} integer(s), got {' '.join(words)!r}")
    try:
        return [int(word) for word in words]
    except ValueError:
        raise CollectorError(f"{path}: expected integers, got {' '.join(words)!r}") from None


class NetCollector(Collector):
    """Reads ``{procfs}/net/snmp``, ``{procfs}/net/netstat`` and ``{procfs}/sys/net/...``."""

    name = "net"

    def __init__(self, procfs: Path) -> None:
        super().__init__()
        self.procfs = Path(procfs)
        self.read_errors = ReadErrors(self.name)

    def scrape(self) -> Iterable[Metric]:
        """TCP counters first (the required part), then the optional netstat and sysctls."""
        snmp_path = self.procfs / "net" / "snmp"
        try:
            snmp = parse_paired_tables(snmp_path)
        except CollectorError as err:
            self.read_errors.count(_reason_of(err), snmp_path, str(err))
            raise
        if "Tcp" not in snmp:
            raise CollectorError(f"{snmp_path}: no Tcp table")
        families = list(_table(snmp["Tcp"], catalog.TCP))
        families += _table(self._netstat().get("TcpExt", {}), catalog.TCP_EXT)
        families += self._sysctls()
        return families

    def _netstat(self) -> dict[str, dict[str, int]]:
        path = self.procfs / "net" / "netstat"
        try:
            return parse_paired_tables(path, self.read_errors)
        except CollectorError as err:
            if _reason_of(err) != "missing":
                self.read_errors.count(_reason_of(err), path, str(err))
            return {}

    def _sysctl_values(self, path: Path, count: int) -> list[int] | None:
        """A sysctl's integers; None (counted when it is not simply absent) otherwise."""
        try:
            words = _read_sysctl(path)
            return None if words is None else _int_values(path, words, count)
        except CollectorError as err:
            self.read_errors.count(_reason_of(err), path, str(err))
            return None

    def _sysctls(self) -> Iterator[Metric]:
        sys = self.procfs / "sys"
        for name, spec in catalog.SYSCTLS.items():
            family = spec.family()
            values = self._sysctl_values(sys / name, 1)
            if values is not None:
                family.add_metric([], float(values[0]))
            yield family
        for name, spec in catalog.SYSCTL_TRIPLES.items():
            family = spec.family()
            values = self._sysctl_values(sys / name, len(TRIPLE_FIELDS))
            for field, value in zip(TRIPLE_FIELDS, values or (), strict=False):
                family.add_metric([field], float(value))
            yield family
        family = catalog.TCP_CONGESTION_CONTROL.family()
        path = sys / catalog.CONGESTION_CONTROL_SYSCTL
        try:
            words = _read_sysctl(path)
            if words is not None and len(words) != 1:
                raise CollectorError(f"{path}: expected one algorithm, got {' '.join(words)!r}")
        except CollectorError as err:
            self.read_errors.count(_reason_of(err), path, str(err))
            words = None
        if words is not None:
            family.add_metric([words[0]], 1.0)
        yield family


def _reason_of(err: CollectorError) -> str:
    """The read-error reason behind a CollectorError: its HostFileError's, else malformed."""
    cause = err.__context__
    return cause.reason if isinstance(cause, HostFileError) else "malformed"


def _table(values: dict[str, int], specs: dict[str, MetricSpec]) -> Iterator[Metric]:
    for column, spec in specs.items():
        if column in values:
            family = spec.family()
            family.add_metric([], float(values[column]))
            yield family
