"""Builds the enabled collectors and their schedules from an AgentConfig.

Imports are local to each builder so a node without RDMA or NVML never loads what it does not use
(and a broken optional library cannot stop the other collectors from starting).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.collectors.base import Collector
from agent.collectors.deferred import DeferredCollector
from agent.config import AgentConfig
from agent.scheduler import CollectorRunner, Schedule

log = logging.getLogger(__name__)


def _gpu(config: AgentConfig, built: dict[str, Collector]) -> Collector:
    from agent.collectors.gpu import GpuCollector
    from agent.nvml import load_nvml
    from agent.podattr import PodResolver

    def build() -> GpuCollector:
        nvml = load_nvml(config.gpu.backend, config.gpu.fake_gpus)
        resolver = PodResolver(config.procfs, config.gpu.pod_resources_socket)
        return GpuCollector(
            nvml,
            config.sysfs,
            config.procfs,
            pod_resolver=resolver,
            process_metrics=config.gpu.process_metrics,
        )

    return DeferredCollector("gpu", build)


def _numa(config: AgentConfig, built: dict[str, Collector]) -> Collector:
    from agent.collectors.numa import NumaCollector
    from agent.placement import GpuProcess

    gpu = built.get("gpu")

    def gpu_processes() -> list[GpuProcess]:
        inner = gpu.inner if isinstance(gpu, DeferredCollector) else None
        return inner.processes() if inner is not None else []

    return NumaCollector(config.sysfs, config.procfs, gpu_processes=gpu_processes)


def _rdma(config: AgentConfig, built: dict[str, Collector]) -> Collector:
    from agent.collectors.rdma import RdmaCollector

    return RdmaCollector(config.sysfs)


def _net(config: AgentConfig, built: dict[str, Collector]) -> Collector:
    from agent.collectors.net import NetCollector

    return NetCollector(config.procfs)


def _inference(config: AgentConfig, built: dict[str, Collector]) -> Collector:
    from agent.collectors.inference import InferenceCollector, InferenceTarget

    static = [InferenceTarget(t.name, t.url, t.engine) for t in config.inference.targets]
    timeout = config.inference.timeout
    deadline = config.collectors["inference"].deadline  # every fetch fits the deadline
    if not config.inference.discover_pods or config.inference.node_name is None:
        return InferenceCollector(static, timeout_s=timeout, deadline_s=deadline)
    from agent.kube.pods import discovering_targets

    targets = discovering_targets(static, config.inference.node_name)
    return InferenceCollector(targets, timeout_s=timeout, deadline_s=deadline)


def _bench(config: AgentConfig, built: dict[str, Collector]) -> Collector:
    from agent.bench.results import BenchResultsCollector

    return BenchResultsCollector(config.bench.results)


def _nodetune(config: AgentConfig, built: dict[str, Collector]) -> Collector:
    from agent.nodetune.collector import NodetuneCollector

    return NodetuneCollector(config.procfs, config.nodetune.journal)


BUILDERS: dict[str, Callable[[AgentConfig, dict[str, Collector]], Collector]] = {
    "gpu": _gpu,
    "numa": _numa,
    "rdma": _rdma,
    "net": _net,
    "inference": _inference,
    "bench": _bench,
    "nodetune": _nodetune,
}


def build_runners(config: AgentConfig) -> list[CollectorRunner]:
    """One runner per enabled collector, in a fixed order (gpu before numa, which reads it)."""
    built: dict[str, Collector] = {}
    runners = []
    for name, builder in BUILDERS.items():
        settings = config.collectors[name]
        if not settings.enabled:
            continue
        collector = builder(config, built)
        built[name] = collector
        runners.append(CollectorRunner(collector, Schedule(settings.interval, settings.deadline)))
    return runners
