"""The agent's configuration declared once (see :mod:`tuneloop.schema`); :mod:`agent.config`
loads it, applies flag overrides and checks what needs the agent's own code (the listen address).

It lives in the core so that ``tuneloop schema agent`` (a tuner command) documents it without the
tuner importing the agent. Defaults suit a GPU node: port 9450, host roots /sys and /proc (mounted
at /host/sys and /host/proc in a pod), GPU metrics every 5 s, NUMA every 15 s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.schema import Scope, setting
from tuneloop.validation import fail, join

COLLECTORS = ("gpu", "numa", "rdma", "net", "inference", "bench", "nodetune")
ENGINES = ("auto", "vllm", "sglang", "tgi", "triton")
DEFAULT_INTERVALS = {
    "gpu": 5.0,
    "numa": 15.0,
    "rdma": 5.0,
    "net": 5.0,
    "inference": 5.0,
    "bench": 15.0,
    "nodetune": 15.0,
}
DEFAULT_ENABLED = ("gpu", "numa", "rdma", "net", "inference", "bench")
DEFAULT_STATE_DIR = Path("/var/lib/tuneloop")


def _node_name(_scope: Scope) -> str | None:
    return os.environ.get("NODE_NAME")


def _in_state_dir(name: str) -> Callable[[Scope], Path]:
    def derive(scope: Scope) -> Path:
        assert scope.parent is not None
        return Path(scope.parent.values["state_dir"]) / name

    return derive


@dataclass(frozen=True)
class CollectorSettings:
    """One collector: whether it runs, how often, and how long one collection may take."""

    enabled: bool = setting(derive=lambda s: s.key in DEFAULT_ENABLED, help="Run this collector.")
    interval: float = setting(
        derive=lambda s: DEFAULT_INTERVALS[str(s.key)], kind="duration",
        help="Time between collections.",
    )  # fmt: skip
    deadline: float = setting(
        derive=lambda s: s.values["interval"] * 0.8, kind="duration",
        default_text="0.8 x interval", help="A collection that takes longer is abandoned.",
    )  # fmt: skip

    def check_config(self, field: str) -> None:
        if self.deadline > self.interval:
            fail(join(field, "deadline"), f"must not exceed the interval ({self.interval:g}s)")


@dataclass(frozen=True)
class GpuSettings:
    """How GPUs are read."""

    backend: str = setting("nvml", choices=("nvml", "fake"), help="NVML, or a fake (tests).")
    fake_gpus: Path | None = setting(None, help="A JSON file of devices (backend fake).")
    pod_resources_socket: Path | None = setting(
        None, help="The kubelet's pod-resources socket (GPU to pod attribution)."
    )
    process_metrics: bool = setting(
        False,
        help="Export per-process GPU memory (a pid label: new series at every process restart).",
    )

    def check_config(self, field: str) -> None:
        fake = join(field, "fake_gpus")
        if self.backend == "fake" and self.fake_gpus is None:
            fail(fake, "required when gpu.backend is fake (a JSON file of devices)")
        if self.fake_gpus is not None and not self.fake_gpus.is_file():
            fail(fake, f"no such file: {self.fake_gpus}")


@dataclass(frozen=True)
class TargetSettings:
    """An inference server's /metrics endpoint."""

    name: str = setting(help="The target's name (the target label).")
    url: str = setting(help="http(s) URL of its Prometheus metrics.")
    engine: str = setting("auto", choices=ENGINES, help="The engine (auto: from its metrics).")

    def check_config(self, field: str) -> None:
        if not self.url.startswith(("http://", "https://")):
            fail(join(field, "url"), f"must be an http(s) URL, got {self.url!r}")


@dataclass(frozen=True)
class InferenceSettings:
    """Inference servers to scrape: listed targets and, optionally, annotated pods on this node."""

    targets: tuple[TargetSettings, ...] = setting((), help="Servers scraped by URL.")
    timeout: float = setting(2.0, kind="duration", help="Timeout of one scrape.")
    discover_pods: bool = setting(
        False, help='Scrape pods on this node annotated tuneloop.io/scrape: "true".'
    )
    node_name: str | None = setting(
        None, derive=_node_name, default_text="$NODE_NAME", help="This node's name (pod discovery)."
    )

    def check_config(self, field: str) -> None:
        seen: set[str] = set()
        for index, target in enumerate(self.targets):
            if target.name in seen:
                path = join(join(join(field, "targets"), index), "name")
                fail(path, f"duplicate target name {target.name!r}")
            seen.add(target.name)
        if self.discover_pods and self.node_name is None:
            fail(join(field, "node_name"), "required when discover_pods is true (or set NODE_NAME)")


@dataclass(frozen=True)
class BenchSettings:
    """Benchmarks: results file, iperf3 server, and this node's slots of a fabric check."""

    results: Path = setting(
        derive=_in_state_dir("bench.jsonl"), default_text="<state_dir>/bench.jsonl",
        help="JSON-lines file of benchmark results.",
    )  # fmt: skip
    iperf3_server: bool = setting(False, help="Run an iperf3 server for peers' tests.")
    iperf3_port: int = setting(5201, minimum=1, maximum=65535, help="The iperf3 server's port.")
    fabric_schedule: Path | None = setting(
        None, help="Run this node's slots of a fabric-check schedule (JSON)."
    )
    fabric_host: str | None = setting(
        None, derive=_node_name, default_text="$NODE_NAME", help="This node's name in the schedule."
    )

    def check_config(self, field: str) -> None:
        if self.fabric_schedule is not None and self.fabric_host is None:
            fail(
                join(field, "fabric_host"), "required with bench.fabric_schedule (or set NODE_NAME)"
            )


@dataclass(frozen=True, kw_only=True)
class NodeTuneSettings:
    """Node tuning: the desired-state file, the journal of originals, dry run."""

    desired: Path | None = setting(None, help="The desired-state file (from the ConfigMap).")
    journal: Path = setting(
        derive=_in_state_dir("nodetune-journal.json"),
        default_text="<state_dir>/nodetune-journal.json",
        help="Journal of original values (rollback after a crash).",
    )  # fmt: skip
    dry_run: bool = setting(False, help="Log what would change; write nothing.")


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """The node agent: where it listens, host roots, collectors, GPUs, inference, bench, tuning."""

    listen: str = setting(":9450", help="HOST:PORT of /metrics (:PORT for all addresses).")
    sysfs: Path = setting(Path("/sys"), help="Host sysfs root (/host/sys in a pod).")
    procfs: Path = setting(Path("/proc"), help="Host procfs root (/host/proc in a pod).")
    state_dir: Path = setting(DEFAULT_STATE_DIR, help="Folder for the agent's state.")
    log_level: str = setting(
        "info", choices=("debug", "info", "warning", "error"), help="Log level."
    )
    collectors: Mapping[str, CollectorSettings] = setting(keys=COLLECTORS, help="Collectors.")
    gpu: GpuSettings = setting(help="GPUs.")
    inference: InferenceSettings = setting(help="Inference servers.")
    bench: BenchSettings = setting(help="Benchmarks.")
    nodetune: NodeTuneSettings = setting(help="Node tuning.")
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
