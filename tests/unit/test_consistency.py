"""Every metric a dashboard, alert or runbook names is in the catalog and in real output.

"Real output" is the exposition of the real collectors run against the repository's fixture
trees (fake NVML from tests/fixtures/gpu, sysfs/procfs from tests/fixtures/node, the inference
fixtures over a local HTTP server, benchmark results built from real iperf3 and perf outputs)
and of the tuner's metrics fed a few trials.
(The check that every panel returns data from the local lab's Prometheus waits for the lab.)
"""

from __future__ import annotations

import json
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from agent.bench.results import BenchResultsCollector
from agent.collectors.gpu import GpuCollector
from agent.collectors.inference import InferenceCollector, InferenceTarget
from agent.collectors.net import NetCollector
from agent.collectors.numa import NumaCollector
from agent.collectors.rdma import RdmaCollector
from agent.nodetune.collector import NodetuneCollector
from agent.nvml.fake import FakeNvml
from agent.placement import GpuProcess
from agent.scheduler import CollectorRunner, Schedule, Scheduler
from tests.fixtures.bench_results import write_results
from tests.unit.consistency_sources import mig_gpus, more_bench_results, rdma_sysfs, tuned_node
from tuneloop import catalog
from tuneloop.generate import alerts, dashboards
from tuneloop.generate.promql import EXTERNAL_METRICS, metric_names, sample_index, unknown_names
from tuner.metrics import TunerMetrics
from tuner.shift.policy import ShiftSettings, initial_states, step
from tuner.shift.runner import ShiftMetrics

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in dashboards.sources(ROOT):
        data = json.loads(dashboards.to_json(dashboards.load(path)))
        for panel in data["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", [])]
        exprs += [a["expr"] for a in data["annotations"]["list"] if "expr" in a]
        for var in data["templating"]["list"]:
            query = var.get("query")
            if isinstance(query, str) and query.startswith("label_values("):
                exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query))
    return exprs


def alert_exprs() -> list[str]:
    groups = alerts.load_groups(ROOT)
    return [r.expr for g in groups for r in g.recordings] + [
        a.expr for a in alerts.all_alerts(groups)
    ]


def runbook_exprs() -> list[str]:
    exprs = []
    for page in (ROOT / "runbooks").glob("*.md"):
        exprs += re.findall(r"```promql\n(.*?)```", page.read_text(), flags=re.S)
    return exprs


def used_metrics() -> set[str]:
    """Catalog metrics the dashboards, alerts and runbooks name (other exporters' left out)."""
    exprs = dashboard_exprs() + alert_exprs() + runbook_exprs()
    names = {n for e in exprs for n in metric_names(e)}
    return names - EXTERNAL_METRICS


def test_every_metric_named_is_in_the_catalog() -> None:
    for source, exprs in (
        ("dashboards", dashboard_exprs()),
        ("alerts", alert_exprs()),
        ("runbooks", runbook_exprs()),
    ):
        assert exprs, source
        assert unknown_names(exprs) == {}, source


def test_the_scanner_sees_what_it_must() -> None:
    assert metric_names('sum by (le) (rate(foo_bucket{a="b"}[5m])) / on (x) bar') == {
        "foo_bucket",
        "bar",
    }
    assert unknown_names(["rate(tuneloop_gpu_made_up_total[5m])"]) == {
        "tuneloop_gpu_made_up_total": {"rate(tuneloop_gpu_made_up_total[5m])"}
    }


def test_every_alert_has_a_runbook_and_every_runbook_an_alert() -> None:
    names = {a.name for a in alerts.all_alerts(alerts.load_groups(ROOT))}
    pages = {p.stem for p in (ROOT / "runbooks").glob("*.md")}
    assert names == pages


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    tmp = tmp_path_factory.mktemp("journal")
    handler = partial(SimpleHTTPRequestHandler, directory=str(FIXTURES / "inference"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        targets = [
            InferenceTarget(name, f"http://127.0.0.1:{port}/{name}.metrics")
            for name in ("vllm", "sglang", "tgi", "triton")
        ]
        # a target that answers 404: the scrape-failure counter
        targets.append(InferenceTarget("gone", f"http://127.0.0.1:{port}/gone.metrics"))
        node = FIXTURES / "node"
        inference = InferenceCollector(targets)
        nvml = FakeNvml.from_file(FIXTURES / "gpu" / "eight_gpus.json")
        nvml.nvmlInit()
        mig = FakeNvml.from_file(mig_gpus(tmp))
        mig.nvmlInit()
        tuned_procfs, tuned_journal = tuned_node(tmp)
        collectors = [
            GpuCollector(nvml, node / "sys", node / "proc", process_metrics=True),
            NumaCollector(
                node / "sys", node / "proc", lambda: [GpuProcess("0", 2101, 1, "vllm-0", "llm")]
            ),
            RdmaCollector(rdma_sysfs(tmp)),
            NetCollector(node / "proc"),
            NodetuneCollector(tuned_procfs, tuned_journal),
            inference,
            BenchResultsCollector(more_bench_results(write_results(tmp / "bench.jsonl"))),
        ]
        runners = [CollectorRunner(c, Schedule(interval=60, deadline=10)) for c in collectors]
        for runner in runners:
            runner.run_once()
        faulty = FakeNvml.from_file(FIXTURES / "gpu" / "faulty_gpus.json")
        faulty.nvmlInit()
        faulty_gpus = GpuCollector(faulty, node / "sys", node / "proc")
        faulty_gpus.refresh()
        faulty_gpus.refresh()  # GPM ratios need a second sample
        mig_gpu_collector = GpuCollector(mig, node / "sys", node / "proc")
        mig_gpu_collector.refresh()
        tuner = TunerMetrics()
        tuner.trial("tcp", "done", 1000.0)
        tuner.rollback("tcp", "slo_breach")
        tuner.set_best("tcp", 1.5)
        tuner.set_knobs("tcp", {"rmem_max": 4194304})
        registry = CollectorRegistry(auto_describe=False)
        everything: list[Collector] = [
            *collectors,
            faulty_gpus,
            mig_gpu_collector,
            Scheduler(runners),
            tuner,
        ]
        for c in everything:
            registry.register(c)
        text = generate_latest(registry).decode() + shift_exposition()
    finally:
        server.shutdown()
        server.server_close()
        inference.close()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    }


def shift_exposition() -> str:
    """The shifter's metrics after one replica was shifted."""
    states = initial_states({"llm/r0": 16, "llm/r1": 16})
    result = step(states, {"llm/r0": 0.9, "llm/r1": 0.1}, ShiftSettings(ema_alpha=1.0), now=0.0)
    metrics = ShiftMetrics()
    metrics.update("llm", result, {"llm/r0": 1000.0})
    return generate_latest(metrics.registry).decode()


def test_every_metric_used_appears_in_the_real_output(exposition: set[str]) -> None:
    index = sample_index()
    used = {index[n].name for n in used_metrics()}
    produced = {index[s].name for s in exposition if s in index}
    missing = used - produced
    assert missing == set(), (
        f"used by dashboards/alerts/runbooks but not exported: {sorted(missing)}"
    )


def test_the_catalog_knows_every_sample_the_collectors_export(exposition: set[str]) -> None:
    names = {s for s in exposition if s.startswith("tuneloop_")}
    assert names - set(sample_index()) == set()
    assert catalog.get("tuneloop_inference_ttft_seconds").type == "histogram"
