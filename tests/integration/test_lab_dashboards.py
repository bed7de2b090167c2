"""Every panel of every generated dashboard returns data from the local lab's Prometheus.

The lab runs as one node of the cluster ``lab``: three replicas behind HAProxy under load, the
agent with fake GPUs (``fixtures/gpu/two_gpus.json`` plus an XID event) reading a fixture node
(``fixtures/node``: RDMA ports, NUMA nodes, the GPU processes' /proc entries), a benchmark results
file built from real iperf3 and perf outputs, and the tuner's textfile metrics from two short
``tuneloop tune`` runs (one that finds a best configuration, one whose SLO is breached at once and
so rolls back). Each panel expression gets Grafana's variables substituted the way Grafana does
for "All" (a regex alternation of the values the variable's own query returns) and is run as an
instant query; an empty answer fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
import yaml

from agent.podattr.podresources import (
    SERVICE,
    ContainerDevices,
    ContainerResources,
    PodResources,
    encode_list_response,
)
from lab import programs
from lab.lab import Lab, LabConfig, running_lab
from tests.fixtures.bench_results import write_results

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not all(
            programs.available(b)
            for b in (
                programs.HAPROXY_BINARY,
                programs.PROMETHEUS_BINARY,
                programs.NODE_EXPORTER_BINARY,
            )
        ),
        reason="haproxy, prometheus and prometheus-node-exporter are needed",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
RATE_INTERVAL = "1m"
# Series the lab cannot have yet, with the reason; an expression naming one must stay empty (so
# this list is pruned when the lab starts producing it). Keep it short.
NO_DATA_IN_LAB: dict[str, str] = {
    'outcome="error"': "the sim replica never fails a request, so no error outcome exists",
    "tuneloop_inference_errors:ratio_rate1h": "recorded from the error outcome (above)",
    "tuneloop_inference_scrape_failures_total": "every inference server in the lab answers",
    "tuneloop_nodetune_": "the lab's agent runs no node-tuning reconciler",
    "tuneloop_perf_instructions_per_cycle": "the lab's perf results counted no cycles",
    "tuneloop_gpu_field_errors_total": "the lab's fake GPUs answer every field",
    "tuneloop_gpu_mig_instances": "the lab's fake GPUs have MIG off",
    "tuneloop_gpu_mig_memory_used_bytes": "the lab's fake GPUs have MIG off",
    "tuneloop_rdma_port_receive_discards_total": "the fixture node's ports count no discards",
    "tuneloop_iperf3_receive_throughput_bytes_per_second": "the lab ran no reverse iperf3 test",
    "tuneloop_iperf3_failures_total": "no iperf3 test failed in the lab",
    "tuneloop_shift_": "the lab runs no traffic shifter (test_shift_lab.py drives one)",
}
REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}]")  # what Grafana escapes in regex values
VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def fake_gpus(out: Path) -> Path:
    """The two-GPU fixture (its processes match fixtures/node/proc) with one XID 13 on GPU 0."""
    data = json.loads((FIXTURES / "gpu" / "two_gpus.json").read_text())
    data["devices"][0]["xid_events"] = [13]
    out.write_text(json.dumps(data))
    return out


@contextmanager
def kubelet(socket: Path, gpus: Path) -> Iterator[None]:
    """The kubelet's pod-resources List on a unix socket: one vLLM pod per fixture GPU (the
    Kubernetes boundary; the agent's client speaks real gRPC to it)."""
    uuids = [d["uuid"] for d in json.loads(gpus.read_text())["devices"]]
    answer = encode_list_response(
        [
            PodResources(
                f"vllm-{i}",
                "inference",
                (ContainerResources("vllm", (ContainerDevices("nvidia.com/gpu", (uuid,)),)),),
            )
            for i, uuid in enumerate(uuids)
        ]
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: answer,
        request_deserializer=lambda b: b,
        response_serializer=lambda b: b,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"List": handler}),)
    )
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    try:
        yield
    finally:
        server.stop(None)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("dashlab")
    node = root / "node"
    shutil.copytree(FIXTURES / "node", node, symlinks=True)
    gpus = fake_gpus(root / "gpus.json")
    socket = root / "kubelet.sock"
    config = LabConfig(
        root / "lab",
        balancer="haproxy",
        die_with_parent=True,
        fake_gpus=gpus,
        sysfs=node / "sys",
        procfs=node / "proc",
        pod_resources_socket=socket,
    )
    with kubelet(socket, gpus), running_lab(config) as running:
        write_results(running.dir / "agent" / "bench.jsonl")
        yield running


def tune(
    lab: Lab, tmp: Path, name: str, trials: int, constraint: dict[str, Any] | None = None
) -> None:
    """One short ``tuneloop tune --apply`` against the lab, metrics into its textfile dir."""
    exp = lab.render_experiment(ROOT / "examples" / "lab-haproxy-weights.yaml", tmp / name)
    data = yaml.safe_load(exp.read_text())
    data["name"] = name
    data["measurement"].update(warmup={"hot": "1s"}, window="3s", check_interval="3s")
    if constraint:
        data["constraints"].append(constraint)
    exp.write_text(yaml.safe_dump(data, sort_keys=False))
    argv = [sys.executable, "-m", "tuner.cli", "tune", str(exp), "--apply"]
    argv += ["--state", str(tmp / f"{name}-state"), "--trials", str(trials)]
    argv += ["--metrics-file", str(lab.metrics_file.with_name(f"{name}.prom"))]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    assert out.returncode in (0, 3), out.stdout + out.stderr


def query(lab: Lab, expr: str) -> list[dict[str, Any]]:
    resp = requests.get(f"{lab.url('prometheus')}/api/v1/query", params={"query": expr}, timeout=5)
    body = resp.json()
    assert body.get("status") == "success", f"{expr}: {body}"
    return list(body["data"]["result"])


def label_values(lab: Lab, query_text: str) -> list[str]:
    """Grafana's ``label_values(selector, label)`` through the series API."""
    m = re.fullmatch(r"label_values\((.*), *(\w+)\)", query_text.strip())
    assert m, f"unsupported variable query {query_text!r}"
    selector, label = m.groups()
    resp = requests.get(
        f"{lab.url('prometheus')}/api/v1/series", params={"match[]": selector}, timeout=5
    )
    body = resp.json()
    assert body.get("status") == "success", f"{query_text}: {body}"
    series = body["data"]
    return sorted({s[label] for s in series if label in s})


def substitute(expr: str, values: dict[str, list[str]]) -> str:
    """Grafana's interpolation for a multi-value variable set to All: ``(a|b)``."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name == "__rate_interval" or name == "__interval":
            return RATE_INTERVAL
        assert name in values, f"{expr}: unknown variable ${name}"
        if values[name] == [".*"]:
            return ".*"
        return "(" + "|".join(REGEX_SPECIAL.sub(r"\\\g<0>", v) for v in values[name]) + ")"

    return VAR.sub(one, expr)


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panels(panel)


def dashboard_queries() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        out.append((path.stem, json.loads(path.read_text())))
    return out


def resolve_variables(
    lab: Lab, name: str, dashboard: dict[str, Any], empty: list[str]
) -> dict[str, list[str]]:
    """Each query variable's values, in order (later ones may use earlier ones); a variable
    without values is recorded in ``empty``."""
    values: dict[str, list[str]] = {}
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        got = label_values(lab, substitute(var["query"], values))
        if any(series in var["query"] for series in NO_DATA_IN_LAB):
            assert not got, f"{name}: variable ${var['name']} has values now: see NO_DATA_IN_LAB"
        elif not got:
            empty.append(f"{name}: variable ${var['name']}: {var['query']}")
        values[var["name"]] = got or [".*"]
    return values


def test_every_panel_returns_data(lab: Lab, tmp_path: Path) -> None:
    lab.start_load(
        [
            *("--target", f"127.0.0.1:{lab.port('haproxy')}", "--rate", "8", "--duration", "90"),
            *("--max-requests", "1500", "--timeout", "5", "--seed", "3"),
        ]
    )
    tune(lab, tmp_path, "dash-weights", trials=2)
    strict = {"name": "ttft", "signal": "p99_ttft_seconds", "max": 1e-6}
    tune(lab, tmp_path, "dash-strict", trials=1, constraint=strict)
    dashboards = dashboard_queries()
    assert {name for name, _ in dashboards} >= {"fleet", "gpu", "network", "numa", "tuner"}
    deadline = time.monotonic() + 45
    while True:
        empty: list[str] = []
        for name, dashboard in dashboards:
            values = resolve_variables(lab, name, dashboard, empty)
            for panel in panels(dashboard):
                for target in panel.get("targets", []):
                    key = f"{name}/{panel.get('title')}: {target['expr']}"
                    got = query(lab, substitute(target["expr"], values))
                    if any(series in target["expr"] for series in NO_DATA_IN_LAB):
                        assert not got, f"{key} has data now: remove it from NO_DATA_IN_LAB"
                    elif not got:
                        empty.append(key)
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not empty, "panels without data:\n" + "\n".join(empty)
