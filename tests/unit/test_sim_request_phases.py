"""The simulated replicas' request phases (queue, prefill, decode) and lengths: the discrete
fleet's statistics, and the real-time replica's vLLM request histograms as the agent reads them."""

from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest

from agent.collectors.inference_engines import parse_samples, request_histograms
from tuner.sim.fleet import FleetConfig, SimFleet
from tuner.sim.profiles import profile
from tuner.sim.replica import DONE
from tuner.sim.replica_metrics import length_buckets
from tuner.sim.replica_server import Engine, Job
from tuner.sim.workload import WorkloadConfig

MODEL = "sim-llama-3-8b"


def test_phases_add_up_to_each_request_time_on_the_replica() -> None:
    fleet = SimFleet(FleetConfig(replicas=1, workload=WorkloadConfig(rate=8.0)), seed=3)
    fleet.run_until(60.0)
    tab = fleet.table
    done = [r for r, status in enumerate(tab.status) if status == DONE]
    assert len(done) > 100
    for r in done:
        queue = tab.scheduled_t[r] - tab.queued_t[r]
        prefill = tab.first_t[r] - tab.scheduled_t[r]
        decode = tab.finish_t[r] - tab.first_t[r]
        assert queue >= 0 and prefill > 0 and decode >= 0
        assert tab.queued_t[r] + queue + prefill + decode == pytest.approx(tab.finish_t[r])
        client_ttft = fleet.first_client_t[r] - fleet.send_t[r]
        assert queue + prefill < client_ttft  # the client's TTFT adds the network legs


def test_a_small_batch_limit_shows_as_queue_time_and_the_demo_table_has_it() -> None:
    def stats(batch_limit: int) -> dict[str, float | None]:
        cfg = FleetConfig(replicas=1, batch_limit=batch_limit, workload=WorkloadConfig(rate=8.0))
        fleet = SimFleet(cfg, seed=3)
        fleet.run_until(90.0)
        return fleet.stats(30.0)

    roomy, tight = stats(256), stats(4)
    for key in ("p99_queue_seconds", "p99_prefill_seconds", "p50_decode_seconds"):
        assert roomy[key] is not None and tight[key] is not None
    assert tight["p99_queue_seconds"] > 10 * roomy["p99_queue_seconds"]  # type: ignore[operator]
    empty = SimFleet(FleetConfig(workload=WorkloadConfig(rate=0.01)), seed=1)
    empty.run_until(1.0)
    assert empty.stats(0.0)["p99_queue_seconds"] is None  # no finished request: no figure


def run_jobs(engine: Engine, jobs: list[Job]) -> None:
    """Submit ``jobs`` and wait (bounded) until each has finished its stream."""
    for job in jobs:
        engine.submit(job)
    for job in jobs:
        while job.out.get(timeout=30) is not None:
            pass


def test_the_real_time_replica_exports_vllm_request_histograms_the_agent_reads() -> None:
    engine = Engine(profile("H100"), batch_limit=1, model=MODEL)  # the second job must wait
    engine.thread.start()
    try:
        run_jobs(engine, [Job(100, 4), Job(25, 3)])
    finally:
        engine.stop()
    found = request_histograms(parse_samples(generate_latest(engine.registry).decode()), "vllm")
    assert set(found) == {"prompt_length", "generation_length", "queue", "prefill", "decode"}
    hists = {name: per_model[MODEL] for name, per_model in found.items()}
    assert hists["prompt_length"].sum == 125 and hists["prompt_length"].count == 2
    assert hists["generation_length"].sum == 7
    assert [le for le, _ in hists["prompt_length"].buckets] == [*length_buckets(8192), math.inf]
    assert length_buckets(8192)[-1] == 5000.0
    assert hists["queue"].sum > 0 and hists["prefill"].sum > 0 and hists["decode"].sum > 0
    index = parse_samples(generate_latest(engine.registry).decode())
    e2e_sum = index["vllm:e2e_request_latency_seconds_sum"][0][1]
    phases = sum(hists[name].sum for name in ("queue", "prefill", "decode"))
    assert phases == pytest.approx(e2e_sum)  # one clock: the phases cover the request
    assert hists["queue"].count == 2
