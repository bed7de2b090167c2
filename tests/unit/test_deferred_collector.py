from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from agent.collectors.deferred import DeferredCollector
from agent.collectors.gpu import GpuCollector
from agent.nvml import load_nvml
from agent.scheduler import CollectorRunner, Schedule, Scheduler

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_gpu_collector_is_built_once_nvml_appears():
    state = {"available": False}

    def build() -> GpuCollector:
        if not state["available"]:
            load_nvml("fake", None)  # raises NvmlUnavailable with its reason
        nvml = load_nvml("fake", FIXTURES / "gpu" / "two_gpus.json")
        return GpuCollector(nvml, FIXTURES / "node" / "sys", FIXTURES / "node" / "proc")

    deferred = DeferredCollector("gpu", build)
    runner = CollectorRunner(deferred, Schedule(5, 2))
    runner.run_once()
    assert deferred.inner is None
    assert not runner.snapshot().success
    assert "fake GPU file" in runner.snapshot().last_error

    registry = CollectorRegistry(auto_describe=False)
    registry.register(deferred)
    registry.register(Scheduler([runner]))
    text = generate_latest(registry).decode()
    assert 'tuneloop_collector_success{collector="gpu"} 0.0' in text
    assert "tuneloop_gpu_info" not in text

    state["available"] = True
    runner.run_once()
    assert runner.snapshot().success and deferred.inner is not None
    text = generate_latest(registry).decode()
    assert text.count("tuneloop_gpu_info{") == 2
    assert 'tuneloop_collector_success{collector="gpu"} 1.0' in text
