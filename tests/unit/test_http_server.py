"""The agent's HTTP server under hostile clients: slow heads, floods, odd methods, keep-alive."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from agent.exporter import build_exposition, make_app
from agent.httpserver import HttpServer, Limits
from agent.scheduler import CollectorRunner, Schedule, Scheduler
from tests.unit.collector_doubles import Steady


@pytest.fixture
def server(request) -> Iterator[HttpServer]:
    limits = getattr(request, "param", None) or Limits(header_timeout_s=0.5, max_connections=64)
    steady = Steady()
    runner = CollectorRunner(steady, Schedule(5, 1))
    runner.run_once()
    app = make_app(build_exposition([steady], Scheduler([runner])), lambda: True)
    srv = HttpServer(app, "127.0.0.1", 0, limits)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def request(port: int, method: str, path: str = "/metrics") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow(server, method) -> None:
    status, headers, _ = request(server.port, method)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def head(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """A raw HEAD request: the status, the headers and whatever came after them."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    top, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = top.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("path", ["/", "/healthz", "/metrics"])
def test_head_has_the_headers_of_get_and_no_body(server, path) -> None:
    get_status, get_headers, get_body = request(server.port, "GET", path)
    status, headers, body = head(server.port, path)
    assert (status, body) == (get_status, b"")
    assert headers["Content-Type"] == get_headers["Content-Type"]
    if path == "/metrics":  # the process's own metrics change between two renders
        assert int(headers["Content-Length"]) > 0 and b"tuneloop_test_value" in get_body
    else:
        assert int(headers["Content-Length"]) == len(get_body) > 0


def test_keep_alive_serves_several_requests_on_one_connection(server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"ok\n")
    finally:
        conn.close()


def slow_clients(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nX-a: ")  # and never the rest
        socks.append(sock)
    return socks


def test_slow_heads_cost_no_thread_and_do_not_delay_a_scrape(server) -> None:
    threads_before = set(threading.enumerate())
    socks = slow_clients(server.port, 200)
    try:
        # no thread started for them (threads left by earlier tests may end meanwhile)
        assert set(threading.enumerate()) - threads_before == set()
        status, _, body = request(server.port, "GET")
        assert status == 200 and b"tuneloop_test_value" in body
        assert server.open_connections() <= server.limits.max_connections
    finally:
        for sock in socks:
            sock.close()


def test_a_head_not_complete_within_the_timeout_is_closed(server) -> None:
    (sock,) = slow_clients(server.port, 1)
    with sock:
        sock.settimeout(10)
        start = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""  # closed by the server, at its header timeout
        assert time.monotonic() - start < 10


def test_an_oversized_head_is_431(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-big: " + b"a" * (32 * 1024))
        assert sock.recv(100).startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize("server", [Limits(max_connections=8, header_timeout_s=30)], indirect=True)
def test_past_max_connections_the_oldest_is_closed(server) -> None:
    socks = slow_clients(server.port, 20)
    try:
        status, _, _ = request(server.port, "GET")  # the newest always gets in
        assert status == 200
        assert server.open_connections() <= 8
        socks[0].settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert socks[0].recv(100) == b""  # the oldest was closed to make room
    finally:
        for sock in socks:
            sock.close()


def test_a_malformed_request_line_is_400(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"HELLO\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
