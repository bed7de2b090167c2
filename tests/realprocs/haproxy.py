"""Start a real HAProxy (Debian's /usr/sbin/haproxy) with a runtime API on loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.realprocs.common import free_port, port_open, stop_process, wait_until

HAPROXY_BINARY = "/usr/sbin/haproxy"


@dataclass
class HaproxyProcess:
    """A running HAProxy: admin and user-level runtime API addresses and the frontend port."""

    admin_address: str  # host:port, level admin
    user_address: str  # host:port, level user (cannot change weights)
    socket_path: Path  # unix socket, level admin
    frontend_port: int
    proc: subprocess.Popen[bytes]


def available() -> bool:
    """True when the HAProxy binary is installed."""
    return shutil.which(HAPROXY_BINARY) is not None


@contextmanager
def running_haproxy(
    workdir: Path,
    backends: Mapping[str, Mapping[str, int]],
    *,
    balance: str = "roundrobin",
    ready_timeout_s: float = 10.0,
) -> Iterator[HaproxyProcess]:
    """Run HAProxy with ``backends`` = {backend: {server: initial weight}}; stop it on exit.

    Servers point at free loopback ports with no health checks, so nothing needs to listen there.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    admin_port, user_port, front_port = free_port(), free_port(), free_port()
    sock = workdir / "admin.sock"
    lines = [
        "global",
        f"  stats socket ipv4@127.0.0.1:{admin_port} level admin",
        f"  stats socket ipv4@127.0.0.1:{user_port} level user",
        f"  stats socket {sock} mode 600 level admin",
        "defaults",
        "  mode http",
        "  timeout connect 1s",
        "  timeout client 5s",
        "  timeout server 5s",
        "frontend fe",
        f"  bind 127.0.0.1:{front_port}",
        f"  default_backend {next(iter(backends))}",
    ]
    for backend, servers in backends.items():
        lines += [f"backend {backend}", f"  balance {balance}"]
        for server, weight in servers.items():
            lines.append(f"  server {server} 127.0.0.1:{free_port()} weight {weight}")
    config = workdir / "haproxy.cfg"
    config.write_text("\n".join(lines) + "\n")
    log = workdir / "haproxy.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [HAPROXY_BINARY, "-db", "-f", str(config)], stdout=log_file, stderr=subprocess.STDOUT
        )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {log.read_text()[-2000:]}")
            return port_open(admin_port) and sock.exists()

        wait_until(ready, ready_timeout_s, "haproxy")
        yield HaproxyProcess(
            admin_address=f"127.0.0.1:{admin_port}",
            user_address=f"127.0.0.1:{user_port}",
            socket_path=sock,
            frontend_port=front_port,
            proc=proc,
        )
    finally:
        stop_process(proc)
