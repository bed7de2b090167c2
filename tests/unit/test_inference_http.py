"""The default HTTP fetch against a real HTTP server on 127.0.0.1 (fixtures, errors, a slow one)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.collectors.inference import HttpFetcher, InferenceCollector, InferenceTarget

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"
SLOW_S = 5.0


class Server:
    def __init__(self) -> None:
        self.release = threading.Event()
        release = self.release

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/").split("/")[0]
                if name == "slow":
                    release.wait(SLOW_S)
                    name = "vllm"
                if name == "error":
                    self._send(500, b"internal error\n")
                elif name == "garbage":
                    self._send(200, b"<html><body>Loading model...</body></html>")
                elif (FIXTURES / f"{name}.metrics").is_file():
                    self._send(200, (FIXTURES / f"{name}.metrics").read_bytes())
                else:
                    self._send(404, b"not found\n")

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}/metrics"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


def by_target(collector: InferenceCollector):
    return {r.target.name: r for r in collector.last_results}


def test_real_server_fixtures_errors_and_a_closed_port_isolate(server: Server) -> None:
    targets = [
        InferenceTarget("vllm", server.url("vllm")),
        InferenceTarget("triton", server.url("triton")),
        InferenceTarget("error", server.url("error")),
        InferenceTarget("garbage", server.url("garbage")),
        InferenceTarget("missing", server.url("nothing-here")),
        InferenceTarget("closed", closed_port_url()),
    ]
    collector = InferenceCollector(targets, timeout_s=2.0)
    try:
        collector.refresh()
        results = by_target(collector)
    finally:
        collector.close()
    assert results["vllm"].up and results["vllm"].engine == "vllm"
    assert results["vllm"].values["waiting"] == {"meta-llama/Llama-3.1-8B-Instruct": 3.0}
    assert results["triton"].up and results["triton"].values["kv_cache"] == {"tensorrt_llm": 0.75}
    assert (results["error"].up, results["error"].reason) == (False, "http_status")
    assert "HTTP 500" in (results["error"].error or "")
    assert (results["missing"].reason, results["garbage"].reason) == ("http_status", "parse")
    assert (results["closed"].up, results["closed"].reason) == (False, "connection")


def test_body_over_the_size_cap_is_refused(server: Server) -> None:
    fetch = HttpFetcher(max_bytes=1024)
    collector = InferenceCollector([InferenceTarget("big", server.url("vllm"))], fetch=fetch)
    try:
        collector.refresh()
    finally:
        collector.close()
    (result,) = collector.last_results
    assert (result.up, result.reason) == (False, "too_large")


def test_slow_targets_are_fetched_concurrently_and_bounded_by_the_timeout(server: Server) -> None:
    timeout_s = 0.4
    targets = [InferenceTarget(f"slow{i}", server.url("slow")) for i in range(4)]
    targets.append(InferenceTarget("fast", server.url("sglang")))
    collector = InferenceCollector(targets, timeout_s=timeout_s)
    try:
        start = time.monotonic()
        collector.refresh()
        elapsed = time.monotonic() - start
    finally:
        collector.close()
    results = by_target(collector)
    assert results["fast"].up
    assert {results[f"slow{i}"].reason for i in range(4)} == {"timeout"}
    # Four slow targets one after the other would take 4 timeouts; together they take about one.
    assert elapsed < 4 * timeout_s
    assert elapsed < SLOW_S


def test_a_fetch_that_ignores_its_timeout_is_cut_at_the_collection_deadline() -> None:
    release = threading.Event()

    def stuck(url: str, timeout_s: float) -> str:
        release.wait(SLOW_S)
        return (FIXTURES / "vllm.metrics").read_text()

    collector = InferenceCollector(
        [InferenceTarget("stuck", "http://stuck/metrics")], fetch=stuck, timeout_s=0.1
    )
    try:
        start = time.monotonic()
        collector.refresh()
        elapsed = time.monotonic() - start
    finally:
        release.set()
        collector.close()
    (result,) = collector.last_results
    assert (result.up, result.reason) == (False, "timeout")
    assert "deadline" in (result.error or "")
    assert elapsed < SLOW_S
