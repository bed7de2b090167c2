"""The lab's configuration (what to start) and its state file (what was started).

``LabConfig.validate()`` names the bad field; ``LabState`` is ``lab.json``, rewritten after each
process starts, so a crash half-way through ``Lab.up()`` still leaves a complete list.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lab import programs
from lab.processes import ProcRecord
from tuner.sim.profiles import PROFILES

STATE_FILE = "lab.json"
BALANCERS = ("haproxy", "nginx", "both")
DATA = Path(str(resources.files("lab") / "data"))
FAKE_GPUS = DATA / "fake_gpus.json"
RULES = DATA / "rules.yaml"
TEXTFILE = "tuneloop_tuner.prom"
# Port order from base_port: replicas first, then these.
PORT_NAMES = (
    "haproxy",
    "haproxy_leastconn",
    "haproxy_admin",
    "haproxy_user",
    "haproxy_exporter",
    "nginx",
    "prometheus",
    "agent",
    "loadgen",
    "tuner_metrics",
)


class LabError(RuntimeError):
    """The lab could not start, or its state file is unusable; the message says which."""


@dataclass(frozen=True)
class LabConfig:
    """What to start; ``validate()`` names the bad field."""

    directory: Path
    replicas: tuple[str, ...] = ("H100", "A100-80GB", "L40S")
    batch_limit: int = 2
    base_port: int | None = None
    balancer: str = "both"
    agent: bool = True
    scrape_interval_s: float = 1.0
    die_with_parent: bool = False
    cluster: str = "lab"
    fake_gpus: Path = FAKE_GPUS
    sysfs: Path | None = None
    procfs: Path | None = None
    pod_resources_socket: Path | None = None
    rule_files: tuple[Path, ...] = (RULES,) if RULES.is_file() else ()
    tuner_metrics: bool = True

    def validate(self) -> None:
        if not self.replicas:
            raise LabError("replicas: name at least one GPU profile")
        for name in self.replicas:
            if name not in PROFILES:
                known = ", ".join(sorted(PROFILES))
                raise LabError(f"replicas: unknown profile {name!r} (known: {known})")
        if self.balancer not in BALANCERS:
            raise LabError(
                f"balancer: must be one of {', '.join(BALANCERS)}, got {self.balancer!r}"
            )
        if self.batch_limit < 1:
            raise LabError(f"batch_limit: must be >= 1, got {self.batch_limit}")
        if self.base_port is not None and not 1024 <= self.base_port <= 65535 - 64:
            raise LabError(f"base_port: must be 1024..65471, got {self.base_port}")
        if self.scrape_interval_s <= 0:
            raise LabError("scrape_interval_s: must be positive")
        if not self.cluster:
            raise LabError("cluster: must not be empty")
        if not Path(self.fake_gpus).is_file():
            raise LabError(f"fake_gpus: no such file {self.fake_gpus}")
        for name in ("sysfs", "procfs"):
            root = getattr(self, name)
            if root is not None and not Path(root).is_dir():
                raise LabError(f"{name}: no such directory {root}")
        for path in self.rule_files:
            if not Path(path).is_file():
                raise LabError(f"rule_files: no such file {path}")
        if self.tuner_metrics and not programs.available(programs.NODE_EXPORTER_BINARY):
            raise LabError(
                f"tuner_metrics: {programs.NODE_EXPORTER_BINARY} is not installed "
                "(install prometheus-node-exporter, or turn tuner_metrics off)"
            )


@dataclass
class LabState:
    """What ``lab.json`` holds."""

    ports: dict[str, int] = field(default_factory=dict)
    replicas: dict[str, str] = field(default_factory=dict)  # server name -> profile
    processes: list[ProcRecord] = field(default_factory=list)
    balancer: str = "both"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["processes"] = [p.to_json() for p in self.processes]
        return data

    @classmethod
    def load(cls, path: Path) -> LabState:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise LabError(f"{path}: cannot read the lab state: {exc}") from None
        if not isinstance(data, dict):
            raise LabError(f"{path}: the lab state must be a JSON object")
        try:
            procs = [ProcRecord.from_json(p, str(path)) for p in data.get("processes", [])]
        except ValueError as exc:
            raise LabError(str(exc)) from None
        return cls(
            ports={str(k): int(v) for k, v in dict(data.get("ports", {})).items()},
            replicas={str(k): str(v) for k, v in dict(data.get("replicas", {})).items()},
            processes=procs,
            balancer=str(data.get("balancer", "both")),
        )
