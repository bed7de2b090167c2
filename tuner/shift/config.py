"""The shifter's configuration file: which balancer, which replicas, how to read their latency.

```yaml
name: llm-shift
signals: {prometheus: http://prometheus:9090}
balancer: {kind: haproxy, address: 127.0.0.1:9999}   # any weight applier (haproxy, nginx)
replicas:                                            # balancer target, and the agent's target
  - {target: llm/r0, inference_target: r0}
  - {target: llm/r1, inference_target: r1, latency: {query: '...'}}   # or any PromQL
latency: {metric: e2e, quantile: 0.99, window: 30s}
interval: 5s
min_apply_interval: 0s   # rate-limits changes, e.g. 10s for nginx, whose changes reload it
policy: {threshold: 200ms, relative: 2.0, ema_alpha: 0.5, clear_ratio: 0.8, hold: 30s,
         step_ratio: 0.25, min_weight: 1, max_drained: 1, headroom_ratio: 1.0}
```

By default each replica's latency is the agent's normalised server-side histogram for its
inference target (``tuneloop_inference_<metric>_seconds``), so the shifter reads the fleet's own
signal; ``latency.query`` per replica takes any PromQL (``$window`` is the window).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tuneloop import validation as v
from tuner.shift.policy import ShiftSettings
from tuner.shift.state import balancer_identity
from tuner.signals.base import SignalRef

METRICS = {
    "e2e": "tuneloop_inference_e2e_latency_seconds",
    "ttft": "tuneloop_inference_ttft_seconds",
    "itl": "tuneloop_inference_inter_token_latency_seconds",
}


@dataclass(frozen=True)
class Replica:
    target: str  # the balancer's name for it (HAProxy backend/server, nginx server)
    latency: SignalRef


@dataclass(frozen=True)
class ShiftConfig:
    name: str
    prometheus: str
    balancer_kind: str
    balancer_options: Mapping[str, Any]
    replicas: tuple[Replica, ...]
    window_s: float
    interval_s: float
    min_apply_interval_s: float
    settings: ShiftSettings

    @property
    def balancer(self) -> str:
        """An identity for the balancer, shared with the tuner's pause check."""
        return balancer_identity(self.balancer_kind, self.balancer_options)


def _default_query(metric: str, quantile: float, inference_target: str) -> str:
    if '"' in inference_target or "\\" in inference_target or "\n" in inference_target:
        raise ValueError("an inference target name cannot hold quotes, backslashes or newlines")
    return (
        f"histogram_quantile({quantile:g}, sum by (le) "
        f'(rate({METRICS[metric]}_bucket{{target="{inference_target}"}}[$window])))'
    )


def _replica(raw: Any, f: str, metric: str, quantile: float) -> Replica:
    raw = v.mapping(raw, f)
    v.no_unknown_keys(raw, f, {"target", "inference_target", "latency"})
    target = v.string(raw.get("target"), v.join(f, "target"))
    if "latency" in raw:
        lat = v.mapping(raw["latency"], v.join(f, "latency"))
        v.no_unknown_keys(lat, v.join(f, "latency"), {"query"})
        return Replica(target, SignalRef(query=v.string(lat.get("query"), v.join(f, "latency"))))
    name = v.string(
        raw.get("inference_target", target.split("/")[-1]), v.join(f, "inference_target")
    )
    try:
        query = _default_query(metric, quantile, name)
    except ValueError as exc:
        v.fail(v.join(f, "inference_target"), str(exc))
    return Replica(target, SignalRef(query=query))


def _settings(raw: Any) -> ShiftSettings:
    f = "policy"
    raw = v.mapping(raw, f)
    keys = {"threshold", "relative", "ema_alpha", "clear_ratio", "hold", "step_ratio"}
    v.no_unknown_keys(raw, f, keys | {"min_weight", "max_drained", "headroom_ratio"})
    d = ShiftSettings()
    threshold = raw.get("threshold", d.threshold_s if "relative" not in raw else None)
    relative = raw.get("relative")
    return ShiftSettings(
        threshold_s=None if threshold is None else v.duration(threshold, "policy.threshold"),
        relative=None if relative is None else v.number(relative, "policy.relative", minimum=1.0),
        ema_alpha=v.number(raw.get("ema_alpha", d.ema_alpha), "policy.ema_alpha", maximum=1),
        clear_ratio=v.number(
            raw.get("clear_ratio", d.clear_ratio), "policy.clear_ratio", maximum=1
        ),
        hold_s=v.duration(raw.get("hold", d.hold_s), "policy.hold", positive=False),
        step_ratio=v.number(raw.get("step_ratio", d.step_ratio), "policy.step_ratio", maximum=1),
        min_weight=v.integer(raw.get("min_weight", d.min_weight), "policy.min_weight", minimum=0),
        max_drained=v.integer(
            raw.get("max_drained", d.max_drained), "policy.max_drained", minimum=1
        ),
    )


def parse_shift_config(raw: Any) -> ShiftConfig:
    """A validated config; every error names its field."""
    raw = v.mapping(raw, "")
    keys = {"name", "signals", "balancer", "replicas", "latency", "interval", "min_apply_interval"}
    v.no_unknown_keys(raw, "", keys | {"policy"})
    signals = v.mapping(raw.get("signals", {}), "signals")
    v.no_unknown_keys(signals, "signals", {"prometheus"})
    balancer = dict(v.mapping(raw.get("balancer"), "balancer"))
    kind = v.string(balancer.pop("kind", None), "balancer.kind", choices=("haproxy", "nginx"))
    latency = v.mapping(raw.get("latency", {}), "latency")
    v.no_unknown_keys(latency, "latency", {"metric", "quantile", "window"})
    metric = v.string(latency.get("metric", "e2e"), "latency.metric", choices=tuple(METRICS))
    quantile = v.number(latency.get("quantile", 0.99), "latency.quantile", positive=True, maximum=1)
    replicas = raw.get("replicas")
    if not isinstance(replicas, list) or len(replicas) < 2:
        v.fail("replicas", "must list at least two replicas (one has nowhere to shift to)")
    parsed = tuple(
        _replica(r, v.join("replicas", i), metric, quantile) for i, r in enumerate(replicas)
    )
    if len({r.target for r in parsed}) != len(parsed):
        v.fail("replicas", "each target may appear once")
    try:
        settings = _settings(raw.get("policy", {}))
    except ValueError as exc:
        if isinstance(exc, v.ConfigError):
            raise
        v.fail("policy", str(exc))
    return ShiftConfig(
        name=v.string(raw.get("name"), "name"),
        prometheus=v.string(signals.get("prometheus"), "signals.prometheus"),
        balancer_kind=kind,
        balancer_options=balancer,
        replicas=parsed,
        window_s=v.duration(latency.get("window", 30), "latency.window"),
        interval_s=v.duration(raw.get("interval", 5), "interval"),
        min_apply_interval_s=v.duration(
            raw.get("min_apply_interval", 0), "min_apply_interval", positive=False
        ),
        settings=settings,
    )


def load_shift_config(path: str | Path) -> ShiftConfig:
    """Read and validate a shifter's YAML file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise v.ConfigError(str(p), f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise v.ConfigError(str(p), f"not valid YAML: {exc}") from None
    return parse_shift_config(raw)
