"""The shifter's configuration file: which balancer, which replicas, how to read their latency.

```yaml
name: llm-shift
signals: {prometheus: http://prometheus:9090}
balancer: {kind: haproxy, address: 127.0.0.1:9999}   # any weight applier (haproxy, nginx)
replicas:                                            # balancer target, and the agent's target
  - {target: llm/r0, inference_target: r0}
  - {target: llm/r1, query: '...'}                   # or any PromQL ($window: the window)
latency: {metric: e2e, quantile: 0.99, window: 30s}
interval: 5s
min_apply_interval: 0s   # rate-limits changes, e.g. 10s for nginx, whose changes reload it
policy: {threshold: 200ms, relative: 2.0, ema_alpha: 0.5, clear_ratio: 0.8, hold: 30s,
         step_ratio: 0.25, min_weight: 1, max_drained: 1, headroom_ratio: 1.0}
```

The dataclasses are the file's schema (:mod:`tuneloop.schema`; ``tuneloop schema shift``). By
default each replica's latency is the agent's normalised server-side histogram for its inference
target (``tuneloop_inference_<metric>_seconds``), so the shifter reads the fleet's own signal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tuneloop.config_file import read_mapping
from tuneloop.schema import parse, setting
from tuneloop.validation import fail, join
from tuner.shift.policy import ShiftSettings
from tuner.shift.state import balancer_identity
from tuner.signals.base import SignalRef

METRICS = {
    "e2e": "tuneloop_inference_e2e_latency_seconds",
    "ttft": "tuneloop_inference_ttft_seconds",
    "itl": "tuneloop_inference_inter_token_latency_seconds",
}
# An agent target name goes inside a PromQL string literal: no quotes, backslashes or newlines.
_TARGET_NAME = re.compile(r"^[A-Za-z0-9_.:/-]+$")


@dataclass(frozen=True)
class BalancerSpec:
    """The balancer whose weights the shifter sets, as an experiment's applier is declared."""

    kind: str = setting(choices=("haproxy", "nginx"), help="The applier kind.")
    options: Mapping[str, Any] = setting(kind="rest", help="The applier's options (address ...).")


@dataclass(frozen=True)
class LatencySettings:
    """How each replica's P99 is read when its ``query`` is not given."""

    metric: str = setting("e2e", choices=tuple(METRICS), help="Which latency of the agent's.")
    quantile: float = setting(0.99, positive=True, maximum=1, help="The quantile to read.")
    window_s: float = setting(30.0, key="window", kind="duration", help="Rate window.")


@dataclass(frozen=True)
class ReplicaSpec:
    """One replica: its name at the balancer, and where its latency comes from."""

    target: str = setting(help="The balancer's name for it (HAProxy backend/server, nginx ...).")
    inference_target: str | None = setting(
        None, help="The agent's target name for it (default: the last part of target)."
    )
    query: str | None = setting(None, help="PromQL for its latency instead of the agent's.")

    def check_config(self, field: str) -> None:
        name = self.agent_target
        if self.query is None and not _TARGET_NAME.match(name):
            fail(join(field, "inference_target"), f"cannot go into a PromQL label: {name!r}")

    @property
    def agent_target(self) -> str:
        return self.inference_target or self.target.split("/")[-1]


@dataclass(frozen=True)
class Replica:
    target: str
    latency: SignalRef


@dataclass(frozen=True)
class ShiftConfig:
    """A traffic shifter: one balancer, its replicas, their latency and the policy."""

    name: str = setting(help="The shifter's name (metrics' shift label, the state file).")
    prometheus: str = setting(group="signals", help="Prometheus base URL.")
    balancer_spec: BalancerSpec = setting(key="balancer", help="The balancer it sets weights on.")
    replica_specs: tuple[ReplicaSpec, ...] = setting(
        key="replicas", min_items=2, help="The replicas behind it (one has nowhere to shift to)."
    )
    latency: LatencySettings = setting(factory=LatencySettings, help="How latency is read.")
    interval_s: float = setting(5.0, key="interval", kind="duration", help="Time between steps.")
    min_apply_interval_s: float = setting(
        0.0, key="min_apply_interval", kind="duration", positive=False,
        help="Least time between two weight changes (nginx reloads on each).",
    )  # fmt: skip
    settings: ShiftSettings = setting(
        factory=ShiftSettings, key="policy", help="When to shift and restore."
    )

    GROUP_HELP: ClassVar[dict[str, str]] = {"signals": "Where the latency readings come from."}

    def check_config(self, field: str) -> None:
        targets = [r.target for r in self.replica_specs]
        if len(set(targets)) != len(targets):
            fail(join(field, "replicas"), "each target may appear once")

    @property
    def balancer_kind(self) -> str:
        return self.balancer_spec.kind

    @property
    def balancer_options(self) -> Mapping[str, Any]:
        return self.balancer_spec.options

    @property
    def window_s(self) -> float:
        return self.latency.window_s

    @property
    def balancer(self) -> str:
        """An identity for the balancer, shared with the tuner's pause check."""
        return balancer_identity(self.balancer_kind, self.balancer_options)

    @property
    def replicas(self) -> tuple[Replica, ...]:
        return tuple(Replica(r.target, self._latency(r)) for r in self.replica_specs)

    def _latency(self, r: ReplicaSpec) -> SignalRef:
        if r.query is not None:
            return SignalRef(query=r.query)
        histogram = METRICS[self.latency.metric]
        return SignalRef(
            query=f"histogram_quantile({self.latency.quantile:g}, sum by (le) "
            f'(rate({histogram}_bucket{{target="{r.agent_target}"}}[$window])))'
        )


def parse_shift_config(raw: Any) -> ShiftConfig:
    """A validated config; every error names its field."""
    return parse(ShiftConfig, raw)


def load_shift_config(path: str | Path) -> ShiftConfig:
    """Read and validate a shifter's YAML file."""
    return parse_shift_config(read_mapping(Path(path)))
