"""The agent as users run it: a process serving /metrics from fixture trees, checked by promtool."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.cli import build_parser, config_from_args, scrape_once
from tests.integration.agent_process import QuietHandler, agent_flags, socket_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
GOLDEN = FIXTURES / "agent" / "golden.prom"
# Values that depend on the clock or the process, not on the node: left out of the golden file.
VOLATILE = re.compile(
    r"^(tuneloop_agent_process_|tuneloop_collector_duration_seconds|"
    r"tuneloop_collector_last_success_timestamp_seconds|tuneloop_inference_scrape_duration_seconds|"
    r"tuneloop_gpu_xid_last_seen_timestamp_seconds)"
)
# promtool's lint findings that are excused: none (iperf3 throughput is in bytes per second).
CONTRACT_UNIT_EXCEPTIONS: set[str] = set()


@pytest.fixture(scope="module")
def inference_server():
    handler = partial(QuietHandler, directory=str(FIXTURES / "inference"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def stable_lines(text: str) -> list[str]:
    return sorted(
        line
        for line in text.splitlines()
        if line and not line.startswith("#") and not VOLATILE.match(line)
    )


def test_scrape_matches_the_golden_exposition(inference_server, tmp_path):
    args = build_parser().parse_args(["scrape", *agent_flags(inference_server, tmp_path)])
    text = scrape_once(config_from_args(args)).replace(inference_server, "http://INFERENCE")
    lines = stable_lines(text)
    if os.environ.get("TUNELOOP_UPDATE_GOLDEN"):
        GOLDEN.write_text("\n".join(lines) + "\n")
    assert lines == GOLDEN.read_text().splitlines()


def test_serve_exports_every_collector_and_passes_promtool(inference_server, tmp_path):
    port_file = tmp_path / "port"
    with socket_port() as port:
        port_file.write_text(str(port))
    cmd = [
        sys.executable,
        "-m",
        "agent.cli",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--interval",
        "numa=1",
        *agent_flags(inference_server, tmp_path),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the agent did not become ready")
        # NUMA placement reads the gpu collector's last snapshot: the first numa pass may run
        # before the first gpu pass ends, so wait (bounded) for a pass that follows one.
        while True:
            with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
                text = response.read().decode()
            if "tuneloop_gpu_process_cross_numa{" in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode()
    assert proc.returncode == 0, output
    for collector in ("gpu", "numa", "rdma", "net", "inference", "bench"):
        assert f'tuneloop_collector_success{{collector="{collector}"}} 1.0' in text, collector
    assert "tuneloop_gpu_process_cross_numa{" in text
    assert "tuneloop_inference_requests_waiting{" in text
    assert 'tuneloop_iperf3_throughput_bytes_per_second{peer="10.0.0.2"}' in text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    findings = {line for line in (check.stdout + check.stderr).splitlines() if line.strip()}
    assert findings <= CONTRACT_UNIT_EXCEPTIONS, findings
    assert check.returncode in (0, 3)  # 3: lint findings only, all of them excused above


class TricklingTarget:
    """A loopback /metrics that answers one byte every 0.5 s (bounded: 600 bytes at most)."""

    def __init__(self) -> None:
        import socket

        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/metrics"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn) -> None:
        body = (FIXTURES / "inference" / "vllm.metrics").read_bytes()
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        with conn:
            for byte in answer[:600]:
                if self.stop.wait(0.5):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def wait_for(url: str, predicate, timeout_s: float = 30.0) -> str:
    """Poll ``url`` (bounded in time) until ``predicate(body)``; the last body."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
            if predicate(text):
                return text
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} never satisfied the check; last body:\n{text[-2000:]}")


def test_sigterm_ends_the_agent_within_seconds_even_with_a_trickling_target(
    inference_server, tmp_path
):
    slow = TricklingTarget()
    with socket_port() as port:
        pass
    cmd = [
        sys.executable,
        "-m",
        "agent.cli",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--collectors",
        "inference",
        "--interval",
        "inference=2",
        "--inference-target",
        f"slow={slow.url}",
        *[f"--inference-target=ok{i}={inference_server}/vllm.metrics" for i in range(4)],
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        text = wait_for(
            f"http://127.0.0.1:{port}/metrics",
            lambda t: 'tuneloop_inference_target_up{engine="unknown",target="slow"} 0.0' in t,
        )
        for i in range(4):
            assert f'tuneloop_inference_target_up{{engine="vllm",target="ok{i}"}} 1.0' in text
        assert 'tuneloop_collector_success{collector="inference"} 1.0' in text
        assert 'scrape_failures_total{reason="timeout",target="slow"}' in text
        start = time.monotonic()
        proc.terminate()
        proc.wait(timeout=20)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate(timeout=10)[0].decode()
        slow.close()
    assert proc.returncode == 0, output
    assert elapsed < 10, f"took {elapsed:.1f}s to exit after SIGTERM"


def run_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_on_a_port_in_use_is_one_line_error():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_agent(
            "serve", "--listen", f"127.0.0.1:{port}", "--collectors", "net",
            "--procfs", str(FIXTURES / "node" / "proc"),
        )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"listen: '\xff\xfe'\n", "is not UTF-8 text"), (None, "cannot read")],
)
def test_serve_with_a_bad_config_file_is_one_line_error(tmp_path, content, words):
    path = tmp_path / "agent.yaml"
    if content is not None:
        path.write_bytes(content)
    result = run_agent("serve", "--config", str(path))
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and words in line and str(path) in line
