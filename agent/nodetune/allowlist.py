"""The sysctls node tuning may touch, how their values parse, and the bounds they must respect.

Only these keys are ever written; anything else is rejected before a single file is opened.
Bounds (all in bytes unless said otherwise), chosen to stop typos and absurd values, not to encode
tuning advice:

- ``net.core.rmem_max``, ``net.core.wmem_max``: one integer, 4 KiB .. 1 GiB.
- ``net.ipv4.tcp_rmem``, ``net.ipv4.tcp_wmem``: three integers ``min default max`` with
  ``min <= default <= max``, each 4 KiB .. 1 GiB (the kernel default min is 4096).
- ``net.ipv4.tcp_congestion_control``: a name listed in
  ``net.ipv4.tcp_available_congestion_control`` on the target (checked by the reconciler, which
  reads that list from the same procfs root).
- ``net.core.netdev_max_backlog``: one integer, 1 .. 1048576 packets.
- ``net.ipv4.tcp_mtu_probing``: 0 (off), 1 (after an ICMP black hole) or 2 (always).

Values normalise to a canonical text (integers separated by single spaces), so a desired
``"4096 131072 6291456"`` and the kernel's tab-separated read-back compare equal.

``per_netns`` records which keys the kernel keeps per network namespace. ``net.core.rmem_max``,
``net.core.wmem_max`` and ``net.core.netdev_max_backlog`` are global: inside a non-initial
namespace the first two read back read-only and the last does not exist, so the reconciler
rejects them up front when it targets a namespace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

KIB = 1024
GIB = 1024 * 1024 * 1024
BUFFER_MIN = 4 * KIB
BUFFER_MAX = GIB
BACKLOG_MAX = 1 << 20

_INT = re.compile(r"^[0-9]+$")
_CC_NAME = re.compile(r"^[a-z0-9_]{1,15}$")


class SysctlValueError(ValueError):
    """A sysctl value is malformed or out of bounds; the message names the key."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def _ints(key: str, text: object, count: int) -> list[int]:
    if isinstance(text, bool):
        raise SysctlValueError(key, f"must be {count} integer(s), got {text!r}")
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str):
        raise SysctlValueError(key, f"must be a string or integer, got {type(text).__name__}")
    fields = text.split()
    if len(fields) != count:
        raise SysctlValueError(key, f"must be {count} integer(s), got {text!r}")
    for field in fields:
        if not _INT.match(field):
            raise SysctlValueError(key, f"{field!r} is not a non-negative integer in {text!r}")
    return [int(f) for f in fields]


def _bounded(key: str, value: int, low: int, high: int, what: str = "value") -> None:
    if not low <= value <= high:
        raise SysctlValueError(key, f"{what} {value} is outside {low}..{high}")


def parse_buffer_max(key: str, text: object) -> str:
    """One buffer size in bytes (``net.core.rmem_max``, ``net.core.wmem_max``)."""
    (value,) = _ints(key, text, 1)
    _bounded(key, value, BUFFER_MIN, BUFFER_MAX)
    return str(value)


def parse_tcp_mem_triple(key: str, text: object) -> str:
    """``min default max`` in bytes (``net.ipv4.tcp_rmem``, ``net.ipv4.tcp_wmem``)."""
    low, default, high = _ints(key, text, 3)
    for name, value in (("min", low), ("default", default), ("max", high)):
        _bounded(key, value, BUFFER_MIN, BUFFER_MAX, name)
    if not low <= default <= high:
        raise SysctlValueError(key, f"needs min <= default <= max, got {low} {default} {high}")
    return f"{low} {default} {high}"


def parse_backlog(key: str, text: object) -> str:
    """Packets queued per CPU before the stack drops (``net.core.netdev_max_backlog``)."""
    (value,) = _ints(key, text, 1)
    _bounded(key, value, 1, BACKLOG_MAX)
    return str(value)


def parse_mtu_probing(key: str, text: object) -> str:
    """0, 1 or 2 (``net.ipv4.tcp_mtu_probing``)."""
    (value,) = _ints(key, text, 1)
    _bounded(key, value, 0, 2)
    return str(value)


def parse_congestion_control(key: str, text: object) -> str:
    """A congestion control name; availability is checked against the target separately."""
    if not isinstance(text, str) or not _CC_NAME.match(text.strip()):
        raise SysctlValueError(key, f"must be an algorithm name like cubic or bbr, got {text!r}")
    return text.strip()


@dataclass(frozen=True)
class SysctlKey:
    """One allowed key: its parser (returns canonical text) and its metric fields."""

    name: str
    parse: Callable[[str, object], str]
    fields: tuple[str, ...]  # metric "field" label per integer; () for a string value
    per_netns: bool


ALLOWLIST: dict[str, SysctlKey] = {
    k.name: k
    for k in (
        SysctlKey("net.core.rmem_max", parse_buffer_max, ("value",), per_netns=False),
        SysctlKey("net.core.wmem_max", parse_buffer_max, ("value",), per_netns=False),
        SysctlKey("net.ipv4.tcp_rmem", parse_tcp_mem_triple, ("min", "default", "max"), True),
        SysctlKey("net.ipv4.tcp_wmem", parse_tcp_mem_triple, ("min", "default", "max"), True),
        SysctlKey("net.ipv4.tcp_congestion_control", parse_congestion_control, (), True),
        SysctlKey("net.core.netdev_max_backlog", parse_backlog, ("value",), per_netns=False),
        SysctlKey("net.ipv4.tcp_mtu_probing", parse_mtu_probing, ("value",), per_netns=True),
    )
}

AVAILABLE_CC_KEY = "net.ipv4.tcp_available_congestion_control"


def lookup(key: object) -> SysctlKey:
    """The allowlist entry for ``key``, or an error naming the key and the allowlist."""
    if not isinstance(key, str) or key not in ALLOWLIST:
        allowed = ", ".join(sorted(ALLOWLIST))
        raise SysctlValueError(str(key), f"not in the node-tuning allowlist ({allowed})")
    return ALLOWLIST[key]


def normalise(key: str, text: object) -> str:
    """Canonical text of ``text`` for ``key`` (validated and bounded)."""
    return lookup(key).parse(key, text)


def read_back_equal(key: str, desired: str, read: str) -> bool:
    """Whether a kernel read-back (tabs, trailing newline) equals a canonical desired value."""
    return " ".join(read.split()) == desired


def numeric_fields(key: str, canonical: str) -> list[tuple[str, float]]:
    """``(field, value)`` pairs for metrics; empty for string-valued keys."""
    spec = lookup(key)
    if not spec.fields:
        return []
    values = canonical.split()
    if len(values) != len(spec.fields) or not all(_INT.match(v) for v in values):
        raise SysctlValueError(key, f"unexpected value {canonical!r}")
    return [(f, float(v)) for f, v in zip(spec.fields, values, strict=True)]
