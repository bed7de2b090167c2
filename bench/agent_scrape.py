"""Agent scrape latency, CPU and memory on a big node, beside node_exporter on the same tree.

The big node: 8 GPUs (fake NVML, 64 GPU processes), 8 mlx5 RoCE ports with full hw_counters,
2 NUMA nodes of 112 logical CPUs, and 4 inference targets (vLLM, SGLang, TGI, Triton samples served
on loopback). Debian's prometheus-node-exporter reads the same sysfs/procfs with its infiniband
and meminfo_numa collectors, the ones that overlap ours.

Measured in one run, interleaved so both see the same machine noise:
- /metrics latency p50/p99 over --scrapes scrapes each (the agent serves a snapshot; node_exporter
  collects on every scrape);
- CPU per collection: the agent's CPU time over a quiet period, divided by the collection passes
  it made (all collectors every --interval seconds), and that as a share of one core at a 5 s
  interval; node_exporter's CPU time per scrape (each scrape is a collection for it);
- resident memory of each process after the scrapes.

Usage: python -m bench.agent_scrape [--scrapes 300] [--quiet-seconds 30]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import cpu_seconds, free_port, rss_bytes, save, summary, table, wait_http
from tests.fixtures.bignode import build_big_node

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
ENGINES = ("vllm", "sglang", "tgi", "triton")
NODE_EXPORTER = "prometheus-node-exporter"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def build_tree(root: Path) -> Path:
    """The big node plus the GPU PCI entries and GPU process cgroups of the small fixture."""
    build_big_node(root)
    shutil.copytree(FIXTURES / "node" / "sys" / "bus", root / "sys" / "bus", dirs_exist_ok=True)
    for pid_dir in (FIXTURES / "node" / "proc").iterdir():
        cgroup = pid_dir / "cgroup"
        if pid_dir.name.isdigit() and cgroup.exists():
            target = root / "proc" / pid_dir.name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(cgroup, target / "cgroup")
    return root


def scrape_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300, help="scrapes of each exporter")
    parser.add_argument("--quiet-seconds", type=float, default=30.0, help="CPU sampling period")
    parser.add_argument("--interval", type=float, default=5.0, help="agent collection interval")
    args = parser.parse_args(argv)
    if shutil.which(NODE_EXPORTER) is None:
        print(f"error: {NODE_EXPORTER} not found (make debs installs it)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-") as tmp:
        node = build_tree(Path(tmp) / "node")
        handler = partial(_Quiet, directory=str(FIXTURES / "inference"))
        targets = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=targets.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{targets.server_address[1]}"

        agent_port, exporter_port = free_port(), free_port()
        agent_cmd = [
            sys.executable, "-m", "agent.cli", "serve",
            "--listen", f"127.0.0.1:{agent_port}",
            "--sysfs", str(node / "sys"), "--procfs", str(node / "proc"),
            "--state-dir", tmp, "--log-level", "warning",
            "--gpu-backend", "fake", "--fake-gpus", str(FIXTURES / "gpu" / "eight_gpus.json"),
            "--collectors", "gpu,numa,rdma,net,inference",
        ]  # fmt: skip
        for name in ENGINES:
            agent_cmd += ["--inference-target", f"{name}={base}/{name}.metrics"]
        for name in ("gpu", "numa", "rdma", "net", "inference"):
            agent_cmd += ["--interval", f"{name}={args.interval:g}"]
        exporter_cmd = [
            NODE_EXPORTER,
            f"--path.sysfs={node / 'sys'}", f"--path.procfs={node / 'proc'}",
            "--collector.disable-defaults", "--collector.infiniband", "--collector.meminfo_numa",
            f"--web.listen-address=127.0.0.1:{exporter_port}",
        ]  # fmt: skip
        agent = subprocess.Popen(agent_cmd, cwd=ROOT)
        exporter = subprocess.Popen(exporter_cmd, stderr=subprocess.DEVNULL)
        try:
            agent_url = f"http://127.0.0.1:{agent_port}/metrics"
            exporter_url = f"http://127.0.0.1:{exporter_port}/metrics"
            wait_http(f"http://127.0.0.1:{agent_port}/readyz")
            wait_http(exporter_url)

            # CPU per collection: the agent alone, no scrapes, over whole collection periods.
            time.sleep(args.interval)  # past start-up work
            cpu_before, t_before = cpu_seconds(agent.pid), time.monotonic()
            time.sleep(args.quiet_seconds)
            agent_cpu = cpu_seconds(agent.pid) - cpu_before
            quiet = time.monotonic() - t_before
            passes = quiet / args.interval
            agent_cpu_per_pass = agent_cpu / passes

            for url in (agent_url, exporter_url):  # warm connections and caches
                for _ in range(5):
                    scrape_ms(url)
            agent_ms, exporter_ms = [], []
            exporter_cpu_before = cpu_seconds(exporter.pid)
            agent_cpu_before = cpu_seconds(agent.pid)
            for _ in range(args.scrapes):
                agent_ms.append(scrape_ms(agent_url))
                exporter_ms.append(scrape_ms(exporter_url))
            exporter_cpu_per_scrape = (
                cpu_seconds(exporter.pid) - exporter_cpu_before
            ) / args.scrapes
            agent_cpu_per_scrape = (cpu_seconds(agent.pid) - agent_cpu_before) / args.scrapes
            agent_rss, exporter_rss = rss_bytes(agent.pid), rss_bytes(exporter.pid)
            with urllib.request.urlopen(agent_url) as response:
                agent_series = sum(
                    1 for line in response.read().decode().splitlines() if line[:1] != "#"
                )
            with urllib.request.urlopen(exporter_url) as response:
                exporter_series = sum(
                    1 for line in response.read().decode().splitlines() if line[:1] != "#"
                )
        finally:
            for proc in (agent, exporter):
                proc.terminate()
                proc.wait(timeout=10)
            targets.shutdown()

    a, e = summary(agent_ms), summary(exporter_ms)
    share_at_5s = agent_cpu_per_pass / 5.0
    rows = [
        ["scrape p50 (ms)", a["p50"], e["p50"], a["p50"] / e["p50"]],
        ["scrape p99 (ms)", a["p99"], e["p99"], a["p99"] / e["p99"]],
        ["CPU per scrape (ms)", agent_cpu_per_scrape * 1000, exporter_cpu_per_scrape * 1000,
         agent_cpu_per_scrape / exporter_cpu_per_scrape],
        ["CPU per collection (ms)", agent_cpu_per_pass * 1000, exporter_cpu_per_scrape * 1000,
         agent_cpu_per_pass / exporter_cpu_per_scrape],
        ["resident memory (MiB)", agent_rss / 2**20, exporter_rss / 2**20,
         agent_rss / exporter_rss],
        ["series exported", float(agent_series), float(exporter_series),
         agent_series / exporter_series],
    ]  # fmt: skip
    print(table(["", "tuneloop-agent", "node_exporter", "agent/exporter"], rows))
    print(f"\nagent collection at a 5 s interval: {share_at_5s:.2%} of one core (goal < 1%)")
    print(f"agent resident memory: {agent_rss / 2**20:.1f} MiB (goal <= 60 MiB)")
    print(
        f"scrape p99: agent {a['p99']:.2f} ms vs node_exporter {e['p99']:.2f} ms (goal: no worse)"
    )
    path = save(
        "agent_scrape",
        {
            "scrapes": args.scrapes,
            "quiet_seconds": args.quiet_seconds,
            "interval_s": args.interval,
            "agent": {
                "scrape_ms": a, "cpu_per_collection_s": agent_cpu_per_pass,
                "cpu_per_scrape_s": agent_cpu_per_scrape, "core_share_at_5s": share_at_5s,
                "rss_bytes": agent_rss, "series": agent_series,
            },
            "node_exporter": {
                "scrape_ms": e, "cpu_per_scrape_s": exporter_cpu_per_scrape,
                "rss_bytes": exporter_rss, "series": exporter_series,
            },
            "ratios": {"p50": a["p50"] / e["p50"], "p99": a["p99"] / e["p99"],
                       "rss": agent_rss / exporter_rss},
            "goals": {"p99_no_worse": a["p99"] <= e["p99"], "rss_le_60MiB": agent_rss <= 60 * 2**20,
                      "cpu_under_1pct_at_5s": share_at_5s < 0.01},
        },
    )  # fmt: skip
    print(f"saved {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
