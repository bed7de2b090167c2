"""nginx configuration for the lab and for tests: a prefix of its own, one proxied upstream.

Decisions: everything nginx writes (pid, logs, temp paths) lives under the lab's directory so it
runs unprivileged-style from any place; the upstream block is an included file the nginx applier
owns; ``/tuneloop/upstream`` answers the digest variable the applier's rendered file defines, so a
reload can be proven; proxy buffering is off so streamed tokens reach the client as they come.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class NginxPaths:
    """Where an nginx prefix keeps its files."""

    prefix: Path

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.prefix / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    @property
    def upstream_file(self) -> Path:
        return self.prefix / "upstream.conf"

    def make_dirs(self) -> None:
        for sub in ("tmp", "logs"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)


def variable_name(upstream: str) -> str:
    """The digest variable the nginx applier's rendered upstream file defines."""
    return "tuneloop_upstream_" + "".join(c if c.isalnum() else "_" for c in upstream)


def render(
    paths: NginxPaths,
    port: int,
    upstream: str,
    *,
    worker_connections: int = 1024,
    read_timeout_s: float = 60.0,
) -> str:
    """nginx.conf text proxying ``/`` to ``upstream`` (defined in ``paths.upstream_file``)."""
    temp = paths.prefix / "tmp"
    return (
        "worker_processes 1;\n"
        "daemon off;\n"
        f"pid {paths.pid_file};\n"
        f"error_log {paths.error_log} info;\n"
        f"events {{ worker_connections {worker_connections}; }}\n"
        "http {\n"
        "  access_log off;\n"
        + "".join(f"  {kind}_temp_path {temp / kind};\n" for kind in TEMP_KINDS)
        + f"  include {paths.upstream_file};\n"
        "  server {\n"
        f"    listen 127.0.0.1:{port};\n"
        f'    location = /tuneloop/upstream {{ return 200 "${variable_name(upstream)}\\n"; }}\n'
        "    location / {\n"
        f"      proxy_pass http://{upstream};\n"
        "      proxy_http_version 1.1;\n"
        "      proxy_buffering off;\n"
        f"      proxy_read_timeout {round(read_timeout_s)}s;\n"
        "    }\n"
        "  }\n"
        "}\n"
    )
