"""Start a real nginx (Debian's) as the test's child, with everything under a temp prefix."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.realprocs.common import free_port, port_open, stop_process, wait_until

NGINX_BINARY = "/usr/sbin/nginx"


@dataclass
class NginxProcess:
    """A running nginx: paths the applier needs and the port it listens on."""

    prefix: Path
    conf: Path
    pid_file: Path
    error_log: Path
    upstream_file: Path
    port: int
    proc: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def available() -> bool:
    """True when the nginx binary is installed."""
    return shutil.which(NGINX_BINARY) is not None


@contextmanager
def running_nginx(
    workdir: Path, upstream: str, upstream_text: str, *, ready_timeout_s: float = 10.0
) -> Iterator[NginxProcess]:
    """Run nginx with ``upstream_text`` included; ``/tuneloop/upstream`` returns its digest map."""
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "logs"):
        (workdir / sub).mkdir(exist_ok=True)
    port = free_port()
    upstream_file = workdir / "upstream.conf"
    upstream_file.write_text(upstream_text)
    variable = "tuneloop_upstream_" + "".join(c if c.isalnum() else "_" for c in upstream)
    temp = workdir / "tmp"
    conf = workdir / "nginx.conf"
    conf.write_text(
        "worker_processes 1;\n"
        "daemon off;\n"
        f"pid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'logs' / 'error.log'} info;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "  access_log off;\n"
        + "".join(f"  {kind}_temp_path {temp / kind};\n" for kind in _TEMP_KINDS)
        + f"  include {upstream_file};\n"
        "  server {\n"
        f"    listen 127.0.0.1:{port};\n"
        f'    location = /tuneloop/upstream {{ return 200 "${variable}\\n"; }}\n'
        f"    location / {{ proxy_pass http://{upstream}; }}\n"
        "  }\n"
        "}\n"
    )
    mapping = _Paths(workdir)
    proc = subprocess.Popen(
        [NGINX_BINARY, "-c", str(conf), "-p", str(workdir), "-e", str(mapping.error_log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {mapping.error_log.read_text()[-2000:]}")
            return port_open(port) and mapping.pid_file.exists()

        wait_until(ready, ready_timeout_s, "nginx")
        yield NginxProcess(
            prefix=workdir,
            conf=conf,
            pid_file=mapping.pid_file,
            error_log=mapping.error_log,
            upstream_file=upstream_file,
            port=port,
            proc=proc,
        )
    finally:
        stop_process(proc)


_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class _Paths:
    def __init__(self, workdir: Path) -> None:
        self.pid_file = workdir / "nginx.pid"
        self.error_log = workdir / "logs" / "error.log"
