"""Start a real nginx (Debian's) as the test's child, with everything under a temp prefix."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab import nginx_conf, programs
from lab.processes import free_port

NGINX_BINARY = programs.NGINX_BINARY


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
    return programs.available(NGINX_BINARY)


@contextmanager
def running_nginx(
    workdir: Path, upstream: str, upstream_text: str, *, ready_timeout_s: float = 10.0
) -> Iterator[NginxProcess]:
    """Run nginx with ``upstream_text`` included; ``/tuneloop/upstream`` returns its digest map."""
    paths = nginx_conf.NginxPaths(workdir)
    paths.make_dirs()
    port = free_port()
    paths.upstream_file.write_text(upstream_text)
    paths.conf.write_text(nginx_conf.render(paths, port, upstream, worker_connections=64))
    run = programs.start_nginx(
        paths.conf, workdir, port, paths.pid_file, paths.error_log,
        log=workdir / "logs" / "stderr.log", die_with_parent=True, timeout_s=ready_timeout_s,
    )  # fmt: skip
    try:
        yield NginxProcess(
            prefix=workdir,
            conf=paths.conf,
            pid_file=paths.pid_file,
            error_log=paths.error_log,
            upstream_file=paths.upstream_file,
            port=port,
            proc=run.proc,
        )
    finally:
        run.stop()
