"""The agent's HTTP face: ``/metrics``, ``/healthz`` and ``/readyz``.

A scrape must cost as little as possible and never wait on collection. Each collector's snapshot
is rendered to the text format once, when it changes (every few seconds), and cached; a scrape
joins the cached text with the few live series rendered fresh each time (the scheduler's
self-metrics and the agent's own process metrics). The body is the Prometheus text format 0.0.4,
gzip-compressed when the scraper accepts it (a fast level: the scrape is on loopback or a LAN).

The server is ``agent.httpserver``: a fixed worker pool behind a non-blocking reader of request
heads, so slow or numerous clients cannot take the threads a scrape needs. Only GET and HEAD
are served (405 with ``Allow`` otherwise). TLS and basic auth come from a Prometheus-style web
configuration file (``agent.webconfig``).
"""

from __future__ import annotations

import gzip
import ssl
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.process_collector import ProcessCollector

from agent.collectors.base import Collector
from agent.httpserver import ALLOWED_METHODS, HttpServer, Limits
from agent.scheduler import Scheduler

StartResponse = Callable[..., Any]


class _Families:
    """A fixed list of families, in the shape generate_latest renders."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = tuple(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class Exposition:
    """The /metrics body: cached text per collector snapshot, plus live series per scrape."""

    def __init__(self, collectors: Sequence[Collector], live: Sequence[Any]) -> None:
        self._collectors = list(collectors)
        self._live = list(live)
        self._cache: dict[int, tuple[int, bytes]] = {}

    def render(self) -> bytes:
        parts = []
        for index, collector in enumerate(self._collectors):
            version, families = collector.snapshot()
            cached = self._cache.get(index)
            if cached is None or cached[0] != version:
                cached = (version, generate_latest(_Families(families)))
                self._cache[index] = cached  # a racing scrape renders the same bytes
            parts.append(cached[1])
        parts.extend(generate_latest(live) for live in self._live)
        return b"".join(parts)


def build_exposition(collectors: Iterable[Collector], scheduler: Scheduler) -> Exposition:
    """Every collector, the self-metrics and the agent's own process metrics."""
    process = ProcessCollector(namespace="tuneloop_agent", registry=None)
    return Exposition(list(collectors), [scheduler, process])


def make_app(exposition: Exposition, ready: Callable[[], bool]) -> Callable[..., Any]:
    """The WSGI application serving the three endpoints."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in ALLOWED_METHODS:
            data = b"method not allowed\n"
            start_response(
                "405 Method Not Allowed",
                [
                    ("Allow", ", ".join(ALLOWED_METHODS)),
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(data))),
                ],
            )
            return [data]
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return _metrics(environ, start_response, exposition.render())
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


def _metrics(environ: dict[str, Any], start_response: StartResponse, body: bytes) -> list[bytes]:
    headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
    if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        body = gzip.compress(body, compresslevel=1)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    start_response("200 OK", headers)
    return [body]


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    )
    return [data]


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` into (host, port); empty host means all."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address must be HOST:PORT, got {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class Exporter:
    """Serves the app on a listen address in the background (binds at construction)."""

    def __init__(
        self,
        app: Callable[..., Any],
        listen: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: Limits | None = None,
    ) -> None:
        host, port = parse_listen(listen)
        self._server = HttpServer(app, host, port, limits, ssl_context)

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return self._server.port

    @property
    def server(self) -> HttpServer:
        return self._server

    def start(self) -> None:
        self._server.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, waiting at most ``timeout`` for requests in flight."""
        self._server.stop(timeout)
