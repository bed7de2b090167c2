"""HAProxy configuration for the lab and for tests: frontends, weighted backends, runtime API.

Decisions: the runtime API listens on loopback TCP at two levels (``admin`` for the tuner's weight
changes, ``user`` to prove a read-only client is refused) and on a unix socket; the built-in
Prometheus exporter (``prometheus-exporter`` service) is served on its own loopback port so
Prometheus scrapes HAProxy directly. Server timeouts are long enough for streamed completions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BALANCES = ("roundrobin", "leastconn", "static-rr", "random")


@dataclass(frozen=True)
class Server:
    """One backend server: its name, loopback address and initial weight."""

    name: str
    address: str  # host:port
    weight: int = 1


@dataclass(frozen=True)
class Backend:
    name: str
    servers: tuple[Server, ...]
    balance: str = "roundrobin"

    def __post_init__(self) -> None:
        if self.balance not in BALANCES:
            raise ValueError(f"backend {self.name}: balance must be one of {BALANCES}")


@dataclass(frozen=True)
class Frontend:
    name: str
    port: int
    backend: str


@dataclass(frozen=True)
class RuntimeApi:
    admin_port: int
    user_port: int | None = None
    socket_path: Path | None = None


def render(
    frontends: Sequence[Frontend],
    backends: Sequence[Backend],
    api: RuntimeApi,
    *,
    exporter_port: int | None = None,
    timeout_server_s: float = 5.0,
    timeout_client_s: float = 5.0,
    maxconn: int = 1024,
) -> str:
    """The haproxy.cfg text; ValueError when a frontend names an unknown backend."""
    known = {b.name for b in backends}
    for fe in frontends:
        if fe.backend not in known:
            raise ValueError(f"frontend {fe.name}: unknown backend {fe.backend!r}")
    lines = ["global", f"  maxconn {maxconn}"]
    lines.append(f"  stats socket ipv4@127.0.0.1:{api.admin_port} level admin")
    if api.user_port is not None:
        lines.append(f"  stats socket ipv4@127.0.0.1:{api.user_port} level user")
    if api.socket_path is not None:
        lines.append(f"  stats socket {api.socket_path} mode 600 level admin")
    lines += [
        "defaults",
        "  mode http",
        "  timeout connect 1s",
        f"  timeout client {_ms(timeout_client_s)}",
        f"  timeout server {_ms(timeout_server_s)}",
    ]
    if exporter_port is not None:
        lines += [
            "frontend prometheus",
            f"  bind 127.0.0.1:{exporter_port}",
            "  http-request use-service prometheus-exporter if { path /metrics }",
            "  no log",
        ]
    for fe in frontends:
        lines += [
            f"frontend {fe.name}",
            f"  bind 127.0.0.1:{fe.port}",
            f"  default_backend {fe.backend}",
        ]
    for be in backends:
        lines += [f"backend {be.name}", f"  balance {be.balance}"]
        for srv in be.servers:
            lines.append(f"  server {srv.name} {srv.address} weight {srv.weight}")
    return "\n".join(lines) + "\n"


def weights_text(backends: Mapping[str, Mapping[str, int]]) -> str:
    """A one-line summary of weights for logs: ``be/srv=w ...``."""
    return " ".join(f"{b}/{s}={w}" for b, servers in backends.items() for s, w in servers.items())


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"
