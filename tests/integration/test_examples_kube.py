"""The Kubernetes examples tuned end to end on server-side signals.

Each test runs one example file (its knobs, appliers, objective and SLOs as written; only the
Prometheus URL, the API server, the windows and the budget are changed for the test) through the
tuning loop against the fake Kubernetes API server, with a real Prometheus scraping a plant that
exports the agent's series for whatever configuration the tuner applied
(:mod:`tests.fleet_plant`). The plant also serves another, slow model, so only a scoped signal
can tune the right service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lab import programs, prometheus_conf
from lab.processes import free_port
from tests.example_files import EXAMPLES, load_example
from tests.fakes.kube_apiserver import FakeApiServer, deployment
from tests.fleet_plant import FleetPlant, service_times, tcp_throughput
from tests.realprocs.prometheus import wait_for_scrape
from tuneloop.clock import RealClock
from tuner.audit import AuditLog
from tuner.loop import LoopResult, TuningLoop
from tuner.signals.base import SignalRef
from tuner.signals.prometheus import PrometheusSignals
from tuner.store import TrialStore
from tuner.wiring import registry_appliers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not programs.available(programs.PROMETHEUS_BINARY), reason="prometheus is not installed"
    ),
]

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DESIRED = """generation: 1
sysctls:
  net.core.rmem_max: '212992'
  net.core.wmem_max: '212992'
  net.ipv4.tcp_congestion_control: cubic
"""
NODE_LABELS = {"cluster": "test", "node": "gpu-node-1"}


@contextmanager
def prometheus(workdir: Path, target: str) -> Iterator[str]:
    """A real Prometheus scraping ``target`` every 500 ms with labels as a cluster's scrape adds."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        prometheus_conf.render(
            {"agent": [target]}, 0.5, labels=NODE_LABELS, honor_labels=("agent",)
        )
    )
    port = free_port()
    run = programs.start_prometheus(
        config, workdir / "data", port, log=workdir / "prometheus.log", die_with_parent=True
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        run.stop()


@contextmanager
def cluster(tmp: Path, replicas: int, max_num_seqs: int) -> Iterator[tuple[FakeApiServer, str]]:
    """The fake API server with the vLLM Deployment and node-tuning ConfigMap, the plant, and
    Prometheus; yields the API server and Prometheus's URL."""
    with FakeApiServer(rollout_delay_s=0.05) as api:  # a rollout that completes at once
        dep = deployment("llm", "vllm-llama", replicas=replicas)
        container = dep["spec"]["template"]["spec"]["containers"][0]
        container["name"] = "vllm"
        container["args"] = ["--model", MODEL, "--max-num-seqs", str(max_num_seqs)]
        api.add("deployments", dep)
        api.add(
            "configmaps",
            {
                "metadata": {"namespace": "tuneloop", "name": "tuneloop-node-tuning"},
                "data": {"desired.yaml": DESIRED},
            },
        )
        with (
            FleetPlant(api, model=MODEL) as plant,
            prometheus(tmp / "prom", f"127.0.0.1:{plant.port}") as url,
        ):
            wait_for_scrape_url(url, "tuneloop_inference_ttft_seconds_bucket")
            yield api, url


def wait_for_scrape_url(url: str, metric: str) -> None:
    from tests.realprocs.prometheus import PrometheusProcess

    wait_for_scrape(PrometheusProcess(url, 0, None, Path()), metric, timeout_s=30)  # type: ignore[arg-type]


def first_value(signals: PrometheusSignals, ref: SignalRef) -> float:
    """The signal over 3 s once Prometheus holds enough samples for a rate (bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        value = signals.value(ref, 3)
        if value is not None:
            return value
        time.sleep(0.5)
    raise AssertionError(f"no value for {ref.describe()} within 20 s")


def short(api: FakeApiServer, prom: str, trials: int) -> Any:
    """The edits a test makes to an example: its services, short windows, a small budget."""

    def edit(data: dict[str, Any]) -> None:
        data["mode"] = "apply"
        data["signals"]["prometheus"] = prom
        for applier in data["appliers"].values():
            applier["host"] = api.url
        data["measurement"].update(
            {
                "warmup": {"hot": "1s", "warm": "1s", "cold": "1s"},
                "window": "3s",
                "check_interval": "1500ms",
                "repeats": 1,
            }
        )
        data["budget"] = {"trials": trials, "wall_time": "4m"}
        data["safety"] = {"max_relative_step": None, "cooldown": 0}
        data["strategy"] = {"name": "skopt-gp", "seed": 3, "initial_points": 3}

    return edit


def tune(path: Path, tmp: Path, api: FakeApiServer, prom: str, trials: int) -> LoopResult:
    exp, settings = load_example(path, tmp, short(api, prom, trials))
    clock = RealClock()
    store = TrialStore(tmp / "trials.db", clock)
    try:
        loop = TuningLoop(
            exp,
            registry_appliers(exp),
            PrometheusSignals.from_settings(settings, clock),
            store,
            clock=clock,
            audit=AuditLog(tmp / "audit.jsonl", None, clock),
        )
        return loop.run(apply=True)
    finally:
        store.close()


def test_scoped_signal_reads_only_the_tuned_service(tmp_path: Path):
    with cluster(tmp_path, replicas=2, max_num_seqs=16) as (_, prom):
        _, settings = load_example(EXAMPLES / "vllm-replicas.yaml", tmp_path)
        scoped = PrometheusSignals(prom, settings=settings)
        unscoped = PrometheusSignals(prom)
        ref = SignalRef(signal="p99_ttft_seconds")
        mine, everyone = first_value(scoped, ref), first_value(unscoped, ref)
        assert mine < 0.5 < 3.0 < everyone  # the other model's 4 s TTFT shows only unscoped


def test_replica_count_example_finds_the_fewest_replicas_within_the_slo(tmp_path: Path):
    # 16 sequences per replica serve ~16 req/s: one replica saturates at 20 req/s, two do not
    assert service_times(1, 16)[0] > 1.0 > service_times(2, 16)[0]
    with cluster(tmp_path, replicas=4, max_num_seqs=16) as (api, prom):
        result = tune(EXAMPLES / "vllm-replicas.yaml", tmp_path, api, prom, trials=5)
        assert result.best is not None
        assert result.best.params["replicas"] == 2
        assert api.get("deployments", "llm", "vllm-llama")["spec"]["replicas"] == 2


def test_batch_size_example_moves_max_num_seqs_through_the_deployment_args(tmp_path: Path):
    with cluster(tmp_path, replicas=2, max_num_seqs=256) as (api, prom):
        result = tune(EXAMPLES / "vllm-batch-size.yaml", tmp_path, api, prom, trials=6)
        assert result.best is not None and result.best_value is not None
        assert result.best.params["max_num_seqs"] <= 64
        args = api.get("deployments", "llm", "vllm-llama")["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
        assert args[args.index("--max-num-seqs") + 1] == str(result.best.params["max_num_seqs"])
        initial_e2e = service_times(2, 256)[0] + 100 * service_times(2, 256)[1]
        assert result.best_value < 0.6 * initial_e2e


def test_tcp_buffer_example_raises_iperf3_throughput_through_the_configmap(tmp_path: Path):
    with cluster(tmp_path, replicas=2, max_num_seqs=256) as (api, prom):
        result = tune(EXAMPLES / "tcp-buffers.yaml", tmp_path, api, prom, trials=4)
        assert result.best is not None and result.best_value is not None
        assert result.best_value > 5 * tcp_throughput(212992, "cubic")
        desired = api.get("configmaps", "tuneloop", "tuneloop-node-tuning")["data"]["desired.yaml"]
        assert str(result.best.params["rmem_max"]) in desired
