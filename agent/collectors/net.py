"""The net collector: TCP counters from /proc/net/snmp and /proc/net/netstat, and net sysctls.

Design decisions:

- snmp and netstat hold tables as pairs of lines (``Tcp: RtoAlgorithm RtoMin ...`` then
  ``Tcp: 1 200 ...``). Columns are matched by name, never by position, because kernels add
  columns; a column the kernel lacks is simply not exported. A pair whose prefixes or column
  counts disagree, or a value that is not an integer, is a CollectorError naming the file and
  line: a wrong mount must not read as zero retransmits.
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
from tuneloop.catalog import net as catalog
from tuneloop.catalog.base import MetricSpec

TRIPLE_FIELDS = ("min", "default", "max")


def parse_paired_tables(path: Path) -> dict[str, dict[str, int]]:
    """``{"Tcp": {"RetransSegs": 12, ...}, ...}`` from a /proc/net/snmp or netstat file."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise CollectorError(f"cannot read {path}: {err.strerror}") from None
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
                raise CollectorError(
                    f"{path}:{value_no}: {prefix} {name} is {number!r}, not an integer"
                ) from None
        tables[prefix] = table
    return tables


def _read_sysctl(path: Path) -> list[str] | None:
    try:
        words = path.read_text().split()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise CollectorError(f"cannot read {path}: {err.strerror}") from None
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

    def scrape(self) -> Iterable[Metric]:
        """TCP counters first (the required part), then the sysctls."""
        snmp = parse_paired_tables(self.procfs / "net" / "snmp")
        if "Tcp" not in snmp:
            raise CollectorError(f"{self.procfs / 'net' / 'snmp'}: no Tcp table")
        netstat_path = self.procfs / "net" / "netstat"
        netstat = parse_paired_tables(netstat_path) if netstat_path.exists() else {}
        families = list(_table(snmp["Tcp"], catalog.TCP))
        families += _table(netstat.get("TcpExt", {}), catalog.TCP_EXT)
        families += self._sysctls()
        return families

    def _sysctls(self) -> Iterator[Metric]:
        sys = self.procfs / "sys"
        for name, spec in catalog.SYSCTLS.items():
            family = spec.family()
            words = _read_sysctl(sys / name)
            if words is not None:
                family.add_metric([], float(_int_values(sys / name, words, 1)[0]))
            yield family
        for name, spec in catalog.SYSCTL_TRIPLES.items():
            family = spec.family()
            words = _read_sysctl(sys / name)
            if words is not None:
                values = _int_values(sys / name, words, len(TRIPLE_FIELDS))
                for field, value in zip(TRIPLE_FIELDS, values, strict=True):
                    family.add_metric([field], float(value))
            yield family
        family = catalog.TCP_CONGESTION_CONTROL.family()
        path = sys / catalog.CONGESTION_CONTROL_SYSCTL
        words = _read_sysctl(path)
        if words is not None:
            if len(words) != 1:
                raise CollectorError(f"{path}: expected one algorithm, got {' '.join(words)!r}")
            family.add_metric([words[0]], 1.0)
        yield family


def _table(values: dict[str, int], specs: dict[str, MetricSpec]) -> Iterator[Metric]:
    for column, spec in specs.items():
        if column in values:
            family = spec.family()
            family.add_metric([], float(values[column]))
            yield family
