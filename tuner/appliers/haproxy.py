"""HAProxy server weights through the runtime API (TCP ``host:port`` or a unix socket path).

Design: one connection per command. In non-interactive mode HAProxy reads one command line,
answers and closes the connection, so a reply ends at EOF and no prompt parsing is needed; a
dropped connection can never leave a half-read reply behind for the next command. Weights are read
back with ``get weight be/srv`` (``"current (initial)"``) and set with
``set server be/srv weight N`` (0..256; 0 drains the server). HAProxy's own error text ("No such
server.", "Permission denied", a static algorithm refusing a weight) becomes an ApplierError.

Commands are assembled only from validated parts (:func:`runtime_command`): fixed words, names
that match HAProxy's name grammar (:mod:`tuner.appliers.grammar`) and integers. The runtime API
runs every ``;``-separated part of a line as its own command, so a name like ``llm/r0;help`` is
refused before a socket is opened, and ``command`` itself refuses any line outside that alphabet.
"""

from __future__ import annotations

import csv
import io
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tuneloop.validation import ConfigError
from tuner.appliers.base import AcceptedRange, Applier, ApplierError, KnobClass, Value
from tuner.appliers.grammar import HAPROXY_NAME, haproxy_target

MAX_WEIGHT = 256
WEIGHTS = AcceptedRange(0, MAX_WEIGHT, "HAProxy weights")
_WEIGHT_REPLY = re.compile(r"(\d+) \((?:initial )?(\d+)\)")
_VERBS = frozenset({"get", "set", "show", "server", "weight", "stat"})
_SAFE_LINE = re.compile(r"[A-Za-z0-9_.:/ -]+")


@dataclass(frozen=True)
class ServerStat:
    """One server row of ``show stat``."""

    backend: str
    server: str
    status: str
    weight: int


def parse_address(address: str) -> tuple[str, int] | str:
    """``host:port`` -> (host, port); anything with a ``/`` -> a unix socket path."""
    if "/" in address:
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be host:port or a unix socket path, got {address!r}")
    return host, int(port)


def parse_target(target: str) -> tuple[str, str]:
    """``backend/server`` -> (backend, server), both valid HAProxy names."""
    try:
        return haproxy_target(target, "target")
    except ConfigError as err:
        raise ApplierError(f"haproxy: {err.reason}") from None


def runtime_command(*words: str | int) -> str:
    """One runtime API command line from known verbs, checked names, ``be/srv`` and integers."""
    parts = []
    for word in words:
        if isinstance(word, bool):
            raise ApplierError(f"haproxy: refusing to send {word!r} in a command")
        if isinstance(word, int):
            parts.append(str(word))
        elif word in _VERBS or HAPROXY_NAME.fullmatch(word):
            parts.append(word)
        elif word.count("/") == 1:
            backend, server = parse_target(word)
            parts.append(f"{backend}/{server}")
        else:
            raise ApplierError(f"haproxy: refusing to send {word!r} in a command")
    return " ".join(parts)


def parse_show_stat(text: str) -> list[ServerStat]:
    """Server rows (not FRONTEND/BACKEND aggregates) from ``show stat`` CSV."""
    body = text.lstrip()
    if not body.startswith("# "):
        raise ApplierError(f"haproxy: unexpected 'show stat' reply: {text[:200]!r}")
    servers = []
    try:
        for row in csv.DictReader(io.StringIO(body[2:], newline="")):
            if row.get("svname") in ("FRONTEND", "BACKEND") or not row.get("pxname"):
                continue
            weight = row.get("weight") or "0"
            if not weight.isascii() or not weight.isdigit():
                raise ApplierError(f"haproxy: 'show stat': bad weight {weight!r} in {row!r}")
            status = row.get("status") or ""
            servers.append(ServerStat(row["pxname"], row.get("svname") or "", status, int(weight)))
    except csv.Error as err:
        raise ApplierError(f"haproxy: 'show stat' reply is not CSV: {err}") from err
    return servers


class HaproxyApplier(Applier):
    """Server weights of one HAProxy instance; targets are ``backend/server``."""

    kind = "haproxy"
    knob_class = KnobClass.HOT

    def __init__(self, address: str, timeout_s: float = 3.0) -> None:
        try:
            self._address = parse_address(address)
        except ValueError as err:
            raise ApplierError(f"haproxy: address {err}") from None
        self.address = address
        self.timeout_s = timeout_s

    def command(self, line: str) -> str:
        """Send one runtime API command (see :func:`runtime_command`); return the whole reply."""
        if not _SAFE_LINE.fullmatch(line):
            raise ApplierError(f"haproxy: refusing to send {line!r}: not a single plain command")
        family = socket.AF_UNIX if isinstance(self._address, str) else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout_s)
                sock.connect(
                    str(Path(self._address)) if isinstance(self._address, str) else self._address
                )
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as err:
            raise ApplierError(f"haproxy {self.address}: {line!r} failed: {err}") from err
        return b"".join(chunks).decode(errors="replace")

    def get_weight(self, target: str) -> tuple[int, int]:
        """(current, initial) weight of ``backend/server``."""
        text = self.command(runtime_command("get", "weight", target)).strip()
        match = _WEIGHT_REPLY.fullmatch(text)
        if not match:  # HAProxy answers errors in plain text: "No such server." etc.
            raise ApplierError(f"haproxy {self.address}: get weight {target}: {text}")
        return int(match.group(1)), int(match.group(2))

    def set_weight(self, target: str, weight: int) -> None:
        """Set the current weight; success is an empty reply, anything else is HAProxy's error."""
        command = runtime_command("set", "server", target, "weight", check_weight(target, weight))
        text = self.command(command).strip()
        if text:
            raise ApplierError(f"haproxy {self.address}: set weight {target} {weight}: {text}")

    def servers(self) -> list[ServerStat]:
        """Every server of every backend with its status and weight."""
        return parse_show_stat(self.command(runtime_command("show", "stat")))

    def check_target(self, target: str) -> None:
        parse_target(target)

    def accepted_range(self, target: str) -> AcceptedRange:
        return WEIGHTS

    def read(self, targets: list[str]) -> dict[str, Value]:
        for target in targets:
            parse_target(target)
        return {t: self.get_weight(t)[0] for t in targets}

    def apply(self, desired: Mapping[str, Value]) -> None:
        weights = {t: check_weight(t, v) for t, v in desired.items()}
        for target in weights:
            parse_target(target)
        current = self.read(list(weights))
        for target, weight in weights.items():
            if current[target] != weight:
                self.set_weight(target, weight)


def check_weight(target: str, value: Value) -> int:
    """A weight 0..256 as an int (integral floats are accepted)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WEIGHT:
        raise ApplierError(f"haproxy: {target}: weight must be an integer 0..256, got {value!r}")
    return value
