"""The agent's configuration: a YAML file, overridden by flags, validated field by field.

Flags are applied to the same mapping the file produces before validation, so one validator
serves both and every error names the field (``collectors.gpu.interval: must be ...``).

Defaults suit a GPU node: port 9450, host roots /sys and /proc (mounted at /host/sys and
/host/proc in a pod), GPU metrics every 5 s, NUMA every 15 s.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tuneloop import validation as v
from tuneloop.validation import ConfigError

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


@dataclass(frozen=True)
class CollectorSettings:
    enabled: bool
    interval: float
    deadline: float


@dataclass(frozen=True)
class GpuSettings:
    backend: str = "nvml"
    fake_gpus: Path | None = None
    pod_resources_socket: Path | None = None


@dataclass(frozen=True)
class TargetSettings:
    name: str
    url: str
    engine: str = "auto"


@dataclass(frozen=True)
class InferenceSettings:
    targets: tuple[TargetSettings, ...] = ()
    timeout: float = 2.0
    discover_pods: bool = False
    node_name: str | None = None


@dataclass(frozen=True)
class BenchSettings:
    results: Path
    iperf3_server: bool = False
    iperf3_port: int = 5201
    fabric_schedule: Path | None = None  # run this node's slots of a fabric-check schedule
    fabric_host: str | None = None  # this node's name in the schedule (default NODE_NAME)


@dataclass(frozen=True)
class NodeTuneSettings:
    desired: Path | None
    journal: Path
    dry_run: bool = False


@dataclass(frozen=True)
class AgentConfig:
    listen: str
    sysfs: Path
    procfs: Path
    state_dir: Path
    log_level: str
    collectors: Mapping[str, CollectorSettings]
    gpu: GpuSettings
    inference: InferenceSettings
    bench: BenchSettings
    nodetune: NodeTuneSettings
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; errors name the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "must hold a mapping at the top level")
    return data


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating levels as needed (for flag overrides)."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(part, "must be a mapping")
    node[leaf] = value


def parse_config(raw: Mapping[str, Any]) -> AgentConfig:
    """Validate a configuration mapping into an AgentConfig."""
    raw = v.mapping(raw, "")
    v.no_unknown_keys(
        raw,
        "",
        {
            "listen",
            "sysfs",
            "procfs",
            "state_dir",
            "log_level",
            "collectors",
            "gpu",
            "inference",
            "bench",
            "nodetune",
        },
    )
    listen = v.string(raw.get("listen", ":9450"), "listen")
    from agent.exporter import parse_listen

    try:
        parse_listen(listen)
    except ValueError as exc:
        raise ConfigError("listen", str(exc)) from exc
    state_dir = Path(v.string(raw.get("state_dir", str(DEFAULT_STATE_DIR)), "state_dir"))
    level = v.string(
        raw.get("log_level", "info"), "log_level", choices=("debug", "info", "warning", "error")
    )
    return AgentConfig(
        listen=listen,
        sysfs=Path(v.string(raw.get("sysfs", "/sys"), "sysfs")),
        procfs=Path(v.string(raw.get("procfs", "/proc"), "procfs")),
        state_dir=state_dir,
        log_level=level,
        collectors=_collectors(raw.get("collectors", {})),
        gpu=_gpu(raw.get("gpu", {})),
        inference=_inference(raw.get("inference", {})),
        bench=_bench(raw.get("bench", {}), state_dir),
        nodetune=_nodetune(raw.get("nodetune", {}), state_dir),
        source=copy.deepcopy(dict(raw)),
    )


def _collectors(raw: Any) -> dict[str, CollectorSettings]:
    raw = v.mapping(raw, "collectors")
    v.no_unknown_keys(raw, "collectors", set(COLLECTORS))
    result = {}
    for name in COLLECTORS:
        path = v.join("collectors", name)
        entry = v.mapping(raw.get(name, {}), path)
        v.no_unknown_keys(entry, path, {"enabled", "interval", "deadline"})
        enabled = v.boolean(entry.get("enabled", name in DEFAULT_ENABLED), v.join(path, "enabled"))
        interval = v.duration(
            entry.get("interval", DEFAULT_INTERVALS[name]), v.join(path, "interval")
        )
        deadline = v.duration(entry.get("deadline", interval * 0.8), v.join(path, "deadline"))
        if deadline > interval:
            v.fail(v.join(path, "deadline"), f"must not exceed the interval ({interval:g}s)")
        result[name] = CollectorSettings(enabled, interval, deadline)
    return result


def _optional_path(value: Any, field_name: str) -> Path | None:
    return None if value is None else Path(v.string(value, field_name))


def _gpu(raw: Any) -> GpuSettings:
    raw = v.mapping(raw, "gpu")
    v.no_unknown_keys(raw, "gpu", {"backend", "fake_gpus", "pod_resources_socket"})
    backend = v.string(raw.get("backend", "nvml"), "gpu.backend", choices=("nvml", "fake"))
    fake = _optional_path(raw.get("fake_gpus"), "gpu.fake_gpus")
    if backend == "fake" and fake is None:
        v.fail("gpu.fake_gpus", "required when gpu.backend is fake (a JSON file of devices)")
    if fake is not None and not fake.is_file():
        v.fail("gpu.fake_gpus", f"no such file: {fake}")
    socket_path = _optional_path(raw.get("pod_resources_socket"), "gpu.pod_resources_socket")
    return GpuSettings(backend, fake, socket_path)


def _inference(raw: Any) -> InferenceSettings:
    raw = v.mapping(raw, "inference")
    v.no_unknown_keys(raw, "inference", {"targets", "timeout", "discover_pods", "node_name"})
    targets_raw = raw.get("targets", [])
    if not isinstance(targets_raw, list):
        v.fail("inference.targets", "must be a list")
    targets = []
    seen: set[str] = set()
    for index, item in enumerate(targets_raw):
        path = v.join("inference.targets", index)
        item = v.mapping(item, path)
        v.no_unknown_keys(item, path, {"name", "url", "engine"})
        name = v.string(item.get("name"), v.join(path, "name"))
        if name in seen:
            v.fail(v.join(path, "name"), f"duplicate target name {name!r}")
        seen.add(name)
        url = v.string(item.get("url"), v.join(path, "url"))
        if not url.startswith(("http://", "https://")):
            v.fail(v.join(path, "url"), f"must be an http(s) URL, got {url!r}")
        engine = v.string(item.get("engine", "auto"), v.join(path, "engine"), choices=ENGINES)
        targets.append(TargetSettings(name, url, engine))
    timeout = v.duration(raw.get("timeout", 2.0), "inference.timeout")
    discover = v.boolean(raw.get("discover_pods", False), "inference.discover_pods")
    node = raw.get("node_name", os.environ.get("NODE_NAME"))
    node_name = None if node is None else v.string(node, "inference.node_name")
    if discover and node_name is None:
        v.fail("inference.node_name", "required when discover_pods is true (or set NODE_NAME)")
    return InferenceSettings(tuple(targets), timeout, discover, node_name)


def _bench(raw: Any, state_dir: Path) -> BenchSettings:
    raw = v.mapping(raw, "bench")
    v.no_unknown_keys(
        raw,
        "bench",
        {"results", "iperf3_server", "iperf3_port", "fabric_schedule", "fabric_host"},
    )
    results = Path(v.string(raw.get("results", str(state_dir / "bench.jsonl")), "bench.results"))
    server = v.boolean(raw.get("iperf3_server", False), "bench.iperf3_server")
    port = v.integer(raw.get("iperf3_port", 5201), "bench.iperf3_port", minimum=1, maximum=65535)
    schedule = _optional_path(raw.get("fabric_schedule"), "bench.fabric_schedule")
    host_raw = raw.get("fabric_host", os.environ.get("NODE_NAME"))
    host = None if host_raw is None else v.string(host_raw, "bench.fabric_host")
    if schedule is not None and host is None:
        v.fail("bench.fabric_host", "required with bench.fabric_schedule (or set NODE_NAME)")
    return BenchSettings(results, server, port, schedule, host)


def _nodetune(raw: Any, state_dir: Path) -> NodeTuneSettings:
    raw = v.mapping(raw, "nodetune")
    v.no_unknown_keys(raw, "nodetune", {"desired", "journal", "dry_run"})
    desired = _optional_path(raw.get("desired"), "nodetune.desired")
    journal = Path(
        v.string(raw.get("journal", str(state_dir / "nodetune-journal.json")), "nodetune.journal")
    )
    dry_run = v.boolean(raw.get("dry_run", False), "nodetune.dry_run")
    return NodeTuneSettings(desired, journal, dry_run)


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> AgentConfig:
    """Read the file (if any), apply ``overrides`` (dotted paths), validate."""
    data = read_yaml(path) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        set_path(data, dotted, value)
    return parse_config(data)
