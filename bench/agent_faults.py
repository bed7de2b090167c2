"""The agent on a big node under hostile inputs, beside the same agent on a clean copy of it.

Both agents serve the big node of ``bench.agent_scrape`` (8 GPUs, 8 RoCE ports, 2 NUMA nodes,
4 healthy inference targets on loopback) and run at once, so they share the machine's noise.
The faulted one also has:

- a slowloris inference target (one byte every 0.5 s) beside the four healthy ones;
- a FIFO in place of one RDMA counter file;
- 3,000 slow clients on its port, each sending a request head one byte a second and
  reconnecting when closed (bounded in connections and time; loopback only).

Printed and saved to bench/results/agent_faults.json:
- the healthy targets' ``tuneloop_inference_target_up`` on the faulted agent (must stay 1);
- its resident memory (goal <= 100 MiB), threads and open files under the flood;
- /metrics p99 of both agents, scraped alternately, and the ratio faulted/clean;
- RDMA series of both (the FIFO costs one series, not the device);
- the time from SIGTERM to exit of each (goal <= 5 s).

Usage: python -m bench.agent_faults [--scrapes 200] [--slow-clients 3000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

from bench.agent_scrape import ENGINES, FIXTURES, ROOT, _Quiet, build_tree, scrape_ms
from bench.common import free_port, rss_bytes, save, summary, table, wait_http

TRICKLE_S = 0.5
FLOOD_BYTE_EVERY_S = 1.0


class SlowlorisTarget:
    """A /metrics that answers one byte every 0.5 s; at most 64 connections, 600 bytes each."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/metrics"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set() and self.connections < 64:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        body = (FIXTURES / "inference" / "vllm.metrics").read_bytes()
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        with conn:
            for byte in answer[:600]:
                if self.stop.wait(TRICKLE_S):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


class SlowClients:
    """``count`` slow request heads on ``port``, reconnecting when closed, bounded in time."""

    def __init__(self, port: int, count: int, seconds: float, max_connects: int) -> None:
        self.port, self.count, self.seconds, self.max_connects = port, count, seconds, max_connects
        self.stop = threading.Event()
        self.connects = 0
        self.open_now = 0
        self.first_pass = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self) -> socket.socket | None:
        if self.connects >= self.max_connects:
            return None
        self.connects += 1
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.setblocking(False)
            sock.send(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nX-slow: ")
            return sock
        except OSError:
            return None

    def _run(self) -> None:
        end = time.monotonic() + self.seconds
        socks: list[socket.socket | None] = [None] * self.count
        while not self.stop.is_set() and time.monotonic() < end:
            for i, sock in enumerate(socks):
                if sock is not None:
                    try:
                        sock.send(b"a")
                        continue
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        sock.close()
                socks[i] = self._connect()
                self.open_now += socks[i] is not None
            self.open_now = sum(s is not None for s in socks)
            self.first_pass.set()
            self.stop.wait(FLOOD_BYTE_EVERY_S)
        for sock in socks:
            if sock is not None:
                sock.close()

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def fifo_in_place_of_a_counter(node: Path) -> Path:
    """Replace mlx5_0's np_cnp_sent with a FIFO; returns its path."""
    path = node / "sys" / "class" / "infiniband" / "mlx5_0" / "ports" / "1" / "hw_counters"
    path = path.resolve() / "np_cnp_sent"
    path.unlink()
    os.mkfifo(path)
    return path


def agent_command(node: Path, port: int, state: Path, targets: dict[str, str]) -> list[str]:
    cmd = [
        sys.executable, "-m", "agent.cli", "--log-level", "error", "serve",
        "--listen", f"127.0.0.1:{port}",
        "--sysfs", str(node / "sys"), "--procfs", str(node / "proc"), "--state-dir", str(state),
        "--gpu-backend", "fake", "--fake-gpus", str(FIXTURES / "gpu" / "eight_gpus.json"),
        "--collectors", "gpu,numa,rdma,net,inference",
    ]  # fmt: skip
    for name, url in targets.items():
        cmd += ["--inference-target", f"{name}={url}"]
    return cmd


def metrics(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def values(text: str, prefix: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def sigterm_to_exit_s(proc: subprocess.Popen[bytes]) -> float:
    start = time.monotonic()
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return float("inf")
    return time.monotonic() - start


def wait_for_collection(url: str, names: list[str], timeout_s: float = 40.0) -> str:
    """The faulted agent's /metrics once every named target has a verdict."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            text = metrics(url)
            if all(f'target="{name}"}} ' in text for name in names):
                return text
        time.sleep(0.5)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200, help="scrapes of each agent")
    parser.add_argument("--slow-clients", type=int, default=3000, help="slow heads at once")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (max(soft, min(hard, args.slow_clients + 512)), hard)
    )

    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-") as tmp:
        clean_node = build_tree(Path(tmp) / "clean")
        faulted_node = Path(tmp) / "faulted"
        shutil.copytree(clean_node, faulted_node, symlinks=True)
        fifo_in_place_of_a_counter(faulted_node)
        handler = partial(_Quiet, directory=str(FIXTURES / "inference"))
        healthy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        healthy.daemon_threads = True
        threading.Thread(target=healthy.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{healthy.server_address[1]}"
        targets = {name: f"{base}/{name}.metrics" for name in ENGINES}
        slow = SlowlorisTarget()
        clean_port, faulted_port = free_port(), free_port()
        clean = subprocess.Popen(
            agent_command(clean_node, clean_port, Path(tmp), targets), cwd=ROOT
        )
        faulted = subprocess.Popen(
            agent_command(
                faulted_node, faulted_port, Path(tmp), {**targets, "slowloris": slow.url}
            ),
            cwd=ROOT,
        )
        flood = SlowClients(faulted_port, args.slow_clients, seconds=240, max_connects=30_000)
        clean_url = f"http://127.0.0.1:{clean_port}/metrics"
        faulted_url = f"http://127.0.0.1:{faulted_port}/metrics"
        try:
            wait_http(f"http://127.0.0.1:{clean_port}/readyz", 60)
            wait_http(f"http://127.0.0.1:{faulted_port}/readyz", 60)
            flood.start()
            flood.first_pass.wait(120)  # every slow client connected once (bounded)
            time.sleep(6)  # a full collection interval under the flood
            text = wait_for_collection(faulted_url, [*ENGINES, "slowloris"])
            clean_text = metrics(clean_url)
            for url in (clean_url, faulted_url):
                for _ in range(5):
                    scrape_ms(url)
            clean_ms, faulted_ms, failed = [], [], 0
            for _ in range(args.scrapes):
                clean_ms.append(scrape_ms(clean_url))
                try:
                    faulted_ms.append(scrape_ms(faulted_url))
                except OSError:
                    failed += 1
            text = metrics(faulted_url)
            rss, threads = rss_bytes(faulted.pid), threads_of(faulted.pid)
            agent_fds = len(os.listdir(f"/proc/{faulted.pid}/fd"))
            clean_rss = rss_bytes(clean.pid)
            open_slow = flood.open_now
        finally:
            flood_connects = flood.connects
            faulted_exit_s = sigterm_to_exit_s(faulted)
            clean_exit_s = sigterm_to_exit_s(clean)
            flood.close()
            slow.close()
            healthy.shutdown()

    up = values(text, "tuneloop_inference_target_up{")
    healthy_up = {n: v for n, v in up.items() if 'target="slowloris"' not in n}
    slow_up = [v for n, v in up.items() if 'target="slowloris"' in n]
    success = values(text, "tuneloop_collector_success{")
    rdma_faulted = sum(1 for n in values(text, "tuneloop_rdma_") if "{" in n)
    rdma_clean = sum(1 for n in values(clean_text, "tuneloop_rdma_") if "{" in n)
    c, f = summary(clean_ms), summary(faulted_ms)
    rows = [
        ["scrape p50 (ms)", f["p50"], c["p50"], f["p50"] / c["p50"]],
        ["scrape p99 (ms)", f["p99"], c["p99"], f["p99"] / c["p99"]],
        ["resident memory (MiB)", rss / 2**20, clean_rss / 2**20, rss / clean_rss],
        ["RDMA series", float(rdma_faulted), float(rdma_clean), rdma_faulted / rdma_clean],
        ["SIGTERM to exit (s)", faulted_exit_s, clean_exit_s, faulted_exit_s / clean_exit_s],
    ]
    print(table(["", "faulted agent", "clean agent", "faulted/clean"], rows))
    all_up = bool(healthy_up) and all(v == 1.0 for v in healthy_up.values())
    print(f"\nhealthy targets up on the faulted agent: {len(healthy_up)}/4 all 1: {all_up}")
    print(f"slowloris target up: {slow_up}; collector success: {success}")
    print(f"faulted agent: {threads} threads and {agent_fds} open files while {open_slow} slow "
          f"clients held sockets ({flood_connects} connects); "
          f"failed scrapes {failed}/{args.scrapes}")  # fmt: skip
    print(f"resident memory {rss / 2**20:.1f} MiB (goal <= 100 MiB); "
          f"SIGTERM to exit {faulted_exit_s:.2f} s (goal <= 5 s)")  # fmt: skip
    path = save(
        "agent_faults",
        {
            "scrapes": args.scrapes,
            "slow_clients": args.slow_clients,
            "faulted": {
                "scrape_ms": f, "failed_scrapes": failed, "rss_bytes": rss, "threads": threads,
                "open_files": agent_fds,
                "healthy_target_up": healthy_up, "slowloris_target_up": slow_up,
                "collector_success": success, "rdma_series": rdma_faulted,
                "sigterm_to_exit_s": faulted_exit_s, "slow_clients_open": open_slow,
                "slow_client_connects": flood_connects,
            },
            "clean": {
                "scrape_ms": c, "rss_bytes": clean_rss, "rdma_series": rdma_clean,
                "sigterm_to_exit_s": clean_exit_s,
            },
            "ratios": {"p50": f["p50"] / c["p50"], "p99": f["p99"] / c["p99"],
                       "rss": rss / clean_rss},
            "goals": {"healthy_targets_up": all_up, "rss_le_100MiB": rss <= 100 * 2**20,
                      "sigterm_exit_le_5s": faulted_exit_s <= 5.0},
        },
    )  # fmt: skip
    print(f"saved {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
