"""The controller's configuration file: experiments, state, interval, hysteresis and the Lease."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tuneloop.validation import (
    ConfigError,
    duration,
    fail,
    integer,
    join,
    mapping,
    no_unknown_keys,
    number,
    string,
)


@dataclass(frozen=True)
class LeaseSettings:
    name: str
    namespace: str
    identity: str
    duration_s: int = 15
    renew_deadline_s: int = 10
    retry_period_s: int = 2


@dataclass(frozen=True)
class ControllerConfig:
    experiments: tuple[Path, ...]
    state: Path
    interval_s: float = 300.0
    metrics_port: int = 9108
    ema_alpha: float = 0.3
    baseline_samples: int = 3
    start_ratio: float = 0.10
    clear_ratio: float = 0.03
    min_interval_s: float = 3600.0
    lease: LeaseSettings | None = None


def _lease(raw: Any, f: str) -> LeaseSettings:
    raw = mapping(raw, f)
    no_unknown_keys(
        raw, f, {"name", "namespace", "identity", "duration", "renew_deadline", "retry_period"}
    )
    lease = LeaseSettings(
        name=string(raw.get("name", "tuneloop-tuner"), join(f, "name")),
        namespace=string(raw.get("namespace", "default"), join(f, "namespace")),
        identity=string(raw.get("identity", socket.gethostname()), join(f, "identity")),
        duration_s=int(duration(raw.get("duration", 15), join(f, "duration"))),
        renew_deadline_s=int(duration(raw.get("renew_deadline", 10), join(f, "renew_deadline"))),
        retry_period_s=int(duration(raw.get("retry_period", 2), join(f, "retry_period"))),
    )
    if lease.retry_period_s < 1:
        fail(join(f, "retry_period"), "must be at least 1s")
    if lease.renew_deadline_s <= 1.2 * lease.retry_period_s:
        fail(join(f, "renew_deadline"), "must exceed 1.2 x retry_period")
    if lease.duration_s <= lease.renew_deadline_s:
        fail(join(f, "duration"), "must exceed renew_deadline")
    return lease


def load_controller_config(path: str | Path) -> ControllerConfig:
    """Read the controller's YAML; experiment paths are relative to the file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(p), f"not valid YAML: {exc}") from None
    raw = mapping(raw, "")
    keys = {
        "experiments",
        "state",
        "interval",
        "metrics_port",
        "ema_alpha",
        "baseline_samples",
        "hysteresis",
        "lease",
    }
    no_unknown_keys(raw, "", keys)
    exps = raw.get("experiments")
    if not isinstance(exps, list) or not exps:
        fail("experiments", "must be a non-empty list of experiment files")
    hyst = mapping(raw.get("hysteresis", {}), "hysteresis")
    no_unknown_keys(hyst, "hysteresis", {"start", "clear", "min_interval"})
    start = number(hyst.get("start", 0.10), "hysteresis.start", positive=True)
    clear = number(hyst.get("clear", 0.03), "hysteresis.clear", minimum=0)
    if clear >= start:
        fail("hysteresis.clear", f"must be below hysteresis.start ({start:g})")
    return ControllerConfig(
        experiments=tuple(p.parent / string(e, join("experiments", i)) for i, e in enumerate(exps)),
        state=p.parent / string(raw.get("state", "tuneloop-state"), "state"),
        interval_s=duration(raw.get("interval", 300), "interval"),
        metrics_port=integer(
            raw.get("metrics_port", 9108), "metrics_port", minimum=0, maximum=65535
        ),
        ema_alpha=number(raw.get("ema_alpha", 0.3), "ema_alpha", positive=True, maximum=1),
        baseline_samples=integer(raw.get("baseline_samples", 3), "baseline_samples", minimum=1),
        start_ratio=start,
        clear_ratio=clear,
        min_interval_s=duration(
            hyst.get("min_interval", 3600), "hysteresis.min_interval", positive=False
        ),
        lease=_lease(raw["lease"], "lease") if raw.get("lease") is not None else None,
    )
