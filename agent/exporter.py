"""The agent's HTTP face: ``/metrics``, ``/healthz`` and ``/readyz``.

``/metrics`` is prometheus_client's WSGI app over a registry holding the collectors (which serve
snapshots) and the scheduler's self-metrics, so a scrape costs only serialisation. It honours
``Accept`` for OpenMetrics and ``Accept-Encoding: gzip`` as the library does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.process_collector import ProcessCollector

from agent.collectors.base import Collector
from agent.scheduler import Scheduler

StartResponse = Callable[..., Any]


def build_registry(collectors: Iterable[Collector], scheduler: Scheduler) -> CollectorRegistry:
    """A registry with every collector, the self-metrics and the agent's own process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    registry.register(scheduler)
    ProcessCollector(namespace="tuneloop_agent", registry=registry)
    return registry


def make_app(registry: CollectorRegistry, ready: Callable[[], bool]) -> Callable[..., Any]:
    """The WSGI application serving the three endpoints."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/healthz":
            return _text(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            if ready():
                return _text(start_response, "200 OK", "ready\n")
            return _text(start_response, "503 Service Unavailable", "first collection pending\n")
        if path == "/":
            body = "tuneloop-agent: see /metrics, /healthz, /readyz\n"
            return _text(start_response, "200 OK", body)
        return _text(start_response, "404 Not Found", "not found\n")

    return app


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    )
    return [data]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the log; stay quiet."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` into (host, port); empty host means all."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address must be HOST:PORT, got {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class Exporter:
    """Serves the app on a listen address in a background thread."""

    def __init__(self, app: Callable[..., Any], listen: str) -> None:
        host, port = parse_listen(listen)
        server_class = _ThreadingServerV6 if ":" in host else _ThreadingServer
        self._server = make_server(
            host, port, app, server_class=server_class, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="exporter", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
