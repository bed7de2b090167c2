"""Start a real HAProxy (Debian's /usr/sbin/haproxy) with a runtime API on loopback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab import haproxy_conf, programs
from lab.processes import free_port

HAPROXY_BINARY = programs.HAPROXY_BINARY


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
    return programs.available(HAPROXY_BINARY)


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
    config = workdir / "haproxy.cfg"
    config.write_text(
        haproxy_conf.render(
            [haproxy_conf.Frontend("fe", front_port, next(iter(backends)))],
            [
                haproxy_conf.Backend(
                    name,
                    tuple(
                        haproxy_conf.Server(s, f"127.0.0.1:{free_port()}", w)
                        for s, w in srv.items()
                    ),
                    balance,
                )
                for name, srv in backends.items()
            ],
            haproxy_conf.RuntimeApi(admin_port, user_port, sock),
        )
    )
    run = programs.start_haproxy(
        config, admin_port, log=workdir / "haproxy.log", die_with_parent=True,
        socket_path=sock, timeout_s=ready_timeout_s,
    )  # fmt: skip
    try:
        yield HaproxyProcess(
            admin_address=f"127.0.0.1:{admin_port}",
            user_address=f"127.0.0.1:{user_port}",
            socket_path=sock,
            frontend_port=front_port,
            proc=run.proc,
        )
    finally:
        run.stop()
