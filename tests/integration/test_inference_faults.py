"""Hostile inference targets (trickling, redirecting, duplicating, flooding) blind no other."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.collectors.inference import HttpFetcher, InferenceCollector, InferenceTarget
from agent.collectors.inference_http import FetchError
from agent.scheduler import CollectorRunner, Schedule

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"
VLLM = (FIXTURES / "vllm.metrics").read_bytes()
TRICKLE_S = 0.05  # a byte every 50 ms: far from any per-read timeout, endless in total


class Hostile:
    """A loopback server whose path names its behaviour."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        stop = self.stop

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                kind = self.path.strip("/").split("/")[0]
                with contextlib.suppress(OSError):
                    getattr(self, f"_{kind}")()

            def _ok(self) -> None:
                self._send(VLLM)

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(VLLM)))
                self.end_headers()
                for byte in VLLM[:2000]:  # bounded: 2000 bytes at most, then it gives up
                    if stop.wait(TRICKLE_S):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def _redirect(self) -> None:
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _duplicate(self) -> None:
                self._send(VLLM + b'vllm:num_requests_waiting{model_name="m"} 3\n' * 2)

            def _models(self) -> None:
                lines = [b"# TYPE vllm:num_requests_waiting gauge\n"]
                lines += [
                    b'vllm:num_requests_waiting{model_name="m%d"} 1\n' % i for i in range(100)
                ]
                self._send(b"".join(lines))

            def _endless(self) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"# " + b"x" * 8189 + b"\n"
                for _ in range(10_000):  # 80 MB if nobody stopped reading; bounded anyway
                    if stop.is_set():
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

            def _chunked(self) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(VLLM), 1000):
                    part = VLLM[start : start + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")

            def _gzip(self) -> None:
                self._send(gzip.compress(VLLM), [("Content-Encoding", "gzip")])

            def _huge(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(1 << 40))
                self.end_headers()

            def _send(self, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
                self.send_response(200)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{kind}/metrics"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    try:
        yield server
    finally:
        server.close()


def results(collector: InferenceCollector):
    return {r.target.name: r for r in collector.last_results}


def test_a_trickling_target_is_cut_at_its_total_deadline_and_blinds_nobody(hostile) -> None:
    targets = [InferenceTarget("slow", hostile.url("trickle"))]
    targets += [InferenceTarget(f"ok{i}", hostile.url("ok")) for i in range(9)]
    collector = InferenceCollector(targets, timeout_s=2.0)  # healthy fetches: ample margin
    for _ in range(2):
        collector.refresh()
        by_name = results(collector)
        assert all(by_name[f"ok{i}"].up for i in range(9))
        assert (by_name["slow"].up, by_name["slow"].reason) == (False, "timeout")
    assert collector.inflight() <= 1  # the slow fetch ended itself or is the only one left


def test_fetch_deadline_covers_the_whole_body_not_each_read(hostile) -> None:
    fetch = HttpFetcher()
    start = time.monotonic()
    with pytest.raises(FetchError, match="within the deadline") as err:
        fetch(hostile.url("trickle"), 0.4)
    assert err.value.reason == "timeout"
    assert time.monotonic() - start < 30 * TRICKLE_S * 10  # nowhere near 2000 trickled bytes


@pytest.mark.parametrize("count", [12, 50])
def test_the_collection_fits_the_schedulers_deadline_with_many_targets(count: int) -> None:
    release = threading.Event()

    def fetch(url: str, timeout_s: float) -> str:
        if "/stuck" in url:
            release.wait(30)  # ignores its timeout entirely
        return VLLM.decode()

    targets = [
        InferenceTarget(f"t{i}", f"http://h{i}/{'stuck' if i % 3 == 0 else 'ok'}/metrics")
        for i in range(count)
    ]
    schedule = Schedule(interval=5.0, deadline=3.0)
    collector = InferenceCollector(targets, fetch, timeout_s=2.0, deadline_s=schedule.deadline)
    assert collector.timeout_s < schedule.deadline
    runner = CollectorRunner(collector, schedule)
    try:
        runner.run_once()
    finally:
        release.set()
    assert runner.snapshot().success, runner.snapshot().last_error
    by_name = results(collector)
    assert all(by_name[f"t{i}"].up for i in range(count) if i % 3)
    assert {by_name[f"t{i}"].reason for i in range(0, count, 3)} == {"timeout"}


def test_a_stuck_fetch_is_not_started_again_while_it_runs() -> None:
    release = threading.Event()
    calls = []

    def fetch(url: str, timeout_s: float) -> str:
        calls.append(url)
        release.wait(30)
        return VLLM.decode()

    collector = InferenceCollector([InferenceTarget("stuck", "http://stuck/")], fetch, 0.05)
    try:
        collector.refresh()
        collector.refresh()
        (result,) = collector.last_results
        assert "previous fetch is still running" in (result.error or "")
        assert len(calls) == 1
    finally:
        release.set()


@pytest.mark.parametrize(
    ("kind", "reason", "words"),
    [
        ("redirect", "redirect", "redirects are not followed"),
        ("duplicate", "duplicate", "appears twice"),
        ("models", "too_many_series", "100 models, more than the cap of 64"),
        ("endless", "too_large", "more than 1048576 bytes"),
        ("huge", "too_large", "announces 1099511627776 bytes"),
    ],
)
def test_hostile_bodies_fail_that_target_only(hostile, kind, reason, words) -> None:
    targets = [InferenceTarget("bad", hostile.url(kind)), InferenceTarget("ok", hostile.url("ok"))]
    collector = InferenceCollector(targets, HttpFetcher(max_bytes=1 << 20), timeout_s=5.0)
    families = {f.name: f for f in collector.scrape()}
    by_name = results(collector)
    assert by_name["ok"].up
    assert (by_name["bad"].up, by_name["bad"].reason) == (False, reason)
    assert words in (by_name["bad"].error or "")
    failures = {
        (s.labels["target"], s.labels["reason"]): s.value
        for s in families["tuneloop_inference_scrape_failures"].samples
    }
    assert failures == {("bad", reason): 1.0}


def test_duplicate_series_are_never_summed(hostile) -> None:
    collector = InferenceCollector([InferenceTarget("dup", hostile.url("duplicate"))])
    collector.refresh()
    (result,) = collector.last_results
    assert not result.up and result.values == {}


def test_a_target_over_the_sample_cap_fails(hostile) -> None:
    collector = InferenceCollector([InferenceTarget("t", hostile.url("ok"))], max_samples=10)
    collector.refresh()
    (result,) = collector.last_results
    assert (result.up, result.reason) == (False, "too_many_series")


@pytest.mark.parametrize("kind", ["chunked", "gzip"])
def test_chunked_and_gzip_bodies_are_read(hostile, kind) -> None:
    collector = InferenceCollector([InferenceTarget("t", hostile.url(kind))])
    collector.refresh()
    (result,) = collector.last_results
    assert result.up, result.error
    assert result.values["waiting"] == {"meta-llama/Llama-3.1-8B-Instruct": 3.0}


def test_trickling_headers_are_cut_too() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        stop = threading.Event()

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                for _ in range(200):  # bounded: 200 header bytes at most
                    if stop.wait(TRICKLE_S):
                        return
                    with contextlib.suppress(OSError):
                        conn.sendall(b"H")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with pytest.raises(FetchError) as err:
                HttpFetcher()(f"http://127.0.0.1:{port}/metrics", 0.3)
            assert err.value.reason == "timeout"
        finally:
            stop.set()
            thread.join(5)


def test_the_sample_cap_stops_the_reading_inside_one_huge_family() -> None:
    from agent.collectors.inference_parse import TooManySeries, _capped_lines, parse_samples

    body = "# TYPE x gauge\n" + "".join(f'x{{i="{i}"}} 1\n' for i in range(1000))
    with pytest.raises(TooManySeries, match="more than 10 samples"):
        parse_samples(body, max_samples=10)
    lines = _capped_lines(body, 10)
    assert [next(lines) for _ in range(11)][-1] == 'x{i="9"} 1\n'  # the comment, ten samples
    with pytest.raises(TooManySeries):
        next(lines)  # the eleventh sample is never handed to the parser
