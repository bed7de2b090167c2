"""The agent's series keep their labels when scraped the way the shipped ServiceMonitor scrapes.

A real Prometheus scrapes a real agent (serving the fixture trees, as test_agent_serve does)
with the ServiceMonitor's settings translated to a static scrape config: ``honor_labels: true``
and the relabellings prometheus-operator and the ServiceMonitor add (namespace, pod, container of
the agent; the Kubernetes node name into ``node``). Every series must keep that node name, and
the NUMA series their ``numa_node``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import programs
from lab.processes import free_port
from tests.integration.agent_process import QuietHandler, agent_flags
from tests.realprocs.prometheus import query, wait_for_result

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not programs.available(programs.PROMETHEUS_BINARY), reason="needs prometheus"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
NODE_NAME = "gpu-node-7"
AGENT_POD = "tuneloop-agent-x7k2p"
DEADLINE_S = 60.0


def scrape_config(target: str) -> dict[str, Any]:
    """The ServiceMonitor (deploy/overlays/kube-prometheus-stack) as a static scrape job."""
    fixed = {
        "namespace": "tuneloop-agent",
        "pod": AGENT_POD,
        "container": "agent",
        "node": NODE_NAME,  # relabelings: __meta_kubernetes_pod_node_name -> node
    }
    return {
        "job_name": "tuneloop-agent",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "honor_labels": True,
        "static_configs": [{"targets": [target]}],
        "relabel_configs": [
            {"target_label": label, "replacement": value} for label, value in fixed.items()
        ],
    }


@pytest.fixture
def inference_url() -> Iterator[str]:
    handler = partial(QuietHandler, directory=str(FIXTURES / "inference"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def wait_for(url: str, promql: str) -> list[dict[str, Any]]:
    return wait_for_result(url, promql, DEADLINE_S)


def test_every_series_keeps_the_node_name_and_numa_series_their_numa_node(
    inference_url: str, tmp_path: Path
) -> None:
    agent_port = free_port()
    agent = subprocess.Popen(
        [
            sys.executable,
            *("-m", "agent.cli", "serve", "--listen", f"127.0.0.1:{agent_port}"),
            # NUMA placement reads the gpu collector's snapshot: rerun numa until it has one
            *("--interval", "numa=1"),
            *agent_flags(inference_url, tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [scrape_config(f"127.0.0.1:{agent_port}")],
            }
        )
    )
    port = free_port()
    prometheus = programs.start_prometheus(
        config, tmp_path / "data", port, log=tmp_path / "prometheus.log", die_with_parent=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        numa = wait_for(url, "tuneloop_numa_memory_free_bytes")
        gpus = wait_for(url, "tuneloop_gpu_info")
        processes = wait_for(url, "tuneloop_gpu_process_cross_numa")
        every = query(url, '{__name__=~"tuneloop_.+"}')
    finally:
        prometheus.stop()
        agent.terminate()
        agent.wait(timeout=10)
    assert numa, (tmp_path / "prometheus.log").read_text()[-2000:]
    assert len(every) > 100
    lost = sorted({s["metric"]["__name__"] for s in every if s["metric"]["node"] != NODE_NAME})
    assert lost == [], f"series whose node is not the Kubernetes node: {lost}"
    assert {s["metric"]["numa_node"] for s in numa} == {"0", "1"}
    assert {s["metric"]["node"] for s in numa} == {NODE_NAME}
    assert {s["metric"]["numa_node"] for s in gpus} == {"0", "1"}
    assert {s["metric"]["instance"] for s in every} == {f"127.0.0.1:{agent_port}"}
    assert {s["metric"]["job"] for s in every} == {"tuneloop-agent"}
    # The agent's own series carry the agent's pod; a GPU process's pod is the process's own
    # (declared in the catalog), and one the agent could not resolve is no pod, not the agent's.
    assert {s["metric"]["pod"] for s in numa} == {AGENT_POD}
    assert processes
    assert all(s["metric"].get("pod") != AGENT_POD for s in processes)
