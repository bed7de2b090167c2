"""The discrete-event engine that ties workload, network, balancer and replicas together.

Events are client sends (from the workload's blocks) and arrivals at the balancer (a send plus
the request's network leg, kept in a heap). Before each event every replica is advanced to the
event's time, so the balancer sees true connection counts and replica steps never run ahead of a
request that could join them. A request leaves the system when its last chunk reaches the client
(its finish plus the response leg) or when it errors (queue timeout, prompt larger than the KV
cache). At each send the fleet samples the number of requests in the system and in queues; for
Poisson arrivals these samples are time averages (PASTA), which is what the Little's-law test
and the ``queue_depth`` signal use.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field, replace
from typing import Any

from tuneloop.validation import (
    integer,
    join,
    mapping,
    no_unknown_keys,
    number,
    string,
)
from tuner.sim.balancer import POLICIES, Balancer
from tuner.sim.network import NetworkConfig
from tuner.sim.profiles import profile
from tuner.sim.replica import Replica, RequestTable
from tuner.sim.stats import window_stats
from tuner.sim.workload import BLOCK_S, WorkloadConfig, draw_block

MAX_REPLICAS = 64


@dataclass(frozen=True)
class FleetConfig:
    """The fleet: replica profiles (cycled), count, batch limit, balancer, workload, network."""

    profiles: tuple[str, ...] = ("A100-80GB",)
    replicas: int = 2
    batch_limit: int = 256
    balancer: str = "least_conn"
    weights: tuple[float, ...] = ()
    queue_timeout_s: float = 30.0
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def __post_init__(self) -> None:
        if not self.profiles:
            raise ValueError("profiles: must list at least one GPU profile")
        for name in self.profiles:
            profile(name)
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise ValueError(f"replicas: must be 1..{MAX_REPLICAS}, got {self.replicas}")
        if self.batch_limit < 1:
            raise ValueError(f"batch_limit: must be >= 1, got {self.batch_limit}")
        if self.balancer not in POLICIES:
            raise ValueError(f"balancer: must be one of {', '.join(POLICIES)}")
        if any(w < 0 for w in self.weights):
            raise ValueError(f"weights: must not be negative, got {self.weights}")

    @classmethod
    def from_mapping(cls, data: Any, field_name: str = "") -> FleetConfig:
        """Build from a parsed YAML mapping; every error names its field."""
        raw = mapping(data, field_name or "fleet")
        allowed = set(cls.__dataclass_fields__)
        no_unknown_keys(raw, field_name, allowed)
        kw: dict[str, Any] = {}
        if "profiles" in raw:
            names = raw["profiles"]
            f = join(field_name, "profiles")
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not names:
                raise ValueError(f"{f}: must be a non-empty list of profile names")
            for i, name in enumerate(names):
                try:
                    profile(string(name, join(f, i)))
                except ValueError as exc:
                    raise ValueError(f"{join(f, i)}: {exc}") from None
            kw["profiles"] = tuple(names)
        if "replicas" in raw:
            kw["replicas"] = integer(
                raw["replicas"], join(field_name, "replicas"), minimum=1, maximum=MAX_REPLICAS
            )
        if "batch_limit" in raw:
            kw["batch_limit"] = integer(
                raw["batch_limit"], join(field_name, "batch_limit"), minimum=1
            )
        if "balancer" in raw:
            kw["balancer"] = string(raw["balancer"], join(field_name, "balancer"), choices=POLICIES)
        if "weights" in raw:
            f = join(field_name, "weights")
            if not isinstance(raw["weights"], list):
                raise ValueError(f"{f}: must be a list of numbers")
            kw["weights"] = tuple(
                number(w, join(f, i), minimum=0.0) for i, w in enumerate(raw["weights"])
            )
        if "queue_timeout_s" in raw:
            kw["queue_timeout_s"] = number(
                raw["queue_timeout_s"], join(field_name, "queue_timeout_s"), positive=True
            )
        if "workload" in raw:
            kw["workload"] = WorkloadConfig.from_mapping(
                raw["workload"], join(field_name, "workload")
            )
        if "network" in raw:
            kw["network"] = NetworkConfig.from_mapping(raw["network"], join(field_name, "network"))
        return cls(**kw)


class SimFleet:
    """A simulated fleet; deterministic for a (config, seed)."""

    def __init__(self, config: FleetConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.now = 0.0
        self.network = config.network
        self.batch_limit = config.batch_limit
        self.table = RequestTable()
        self._done: list[tuple[float, int]] = []
        self.replicas: list[Replica] = []
        self.weights: list[float] = []
        self.active = 0
        self.send_t: list[float] = []
        self.deliver_t: list[float] = []
        self.first_client_t: list[float] = []
        self.samples: list[tuple[float, int, int]] = []  # (time, in system, waiting)
        self._deliveries: list[float] = []
        self._left = 0
        self._pending: list[tuple[float, int]] = []
        self._block = -1
        self._times: list[float] = []
        self._prompts: list[int] = []
        self._outputs: list[int] = []
        self._pos = 0
        self._stopped = False
        self.balancer = Balancer(config.balancer, [1.0])
        self.set_replicas(config.replicas)
        for i, w in enumerate(config.weights[: len(self.weights)]):
            self.weights[i] = w
        self.balancer.set_weights(self.weights[: self.active])

    # --- knobs -------------------------------------------------------------------------------
    def replica_names(self) -> list[str]:
        """Names of the replicas in rotation."""
        return [f"r{i}" for i in range(self.active)]

    def set_replicas(self, count: int) -> None:
        """Scale to ``count`` replicas; removed ones leave the rotation and drain."""
        if not 1 <= count <= MAX_REPLICAS:
            raise ValueError(f"replicas: must be 1..{MAX_REPLICAS}, got {count}")
        profiles = self.config.profiles
        while len(self.replicas) < count:
            i = len(self.replicas)
            gpu = profile(profiles[i % len(profiles)])
            rep = Replica(
                i, gpu, self.batch_limit, self.table, self.config.queue_timeout_s, self._done
            )
            rep.step = 0
            self.replicas.append(rep)
            self.weights.append(1.0)
        self.active = count
        self.balancer.set_weights(self.weights[:count])

    def set_weight(self, index: int, weight: float) -> None:
        """Balancer weight of replica ``index``."""
        if not 0 <= index < self.active:
            raise ValueError(f"no replica r{index} in rotation (replicas: {self.active})")
        new = list(self.weights)
        new[index] = weight
        self.balancer.set_weights(new[: self.active])
        self.weights = new

    def set_batch_limit(self, limit: int) -> None:
        """Batch limit on every replica, effective at each one's next step boundary."""
        if limit < 1:
            raise ValueError(f"batch_limit: must be >= 1, got {limit}")
        self.batch_limit = limit
        for rep in self.replicas:
            rep.batch_limit = limit

    def set_tcp_window(self, window_bytes: float) -> None:
        """TCP window of the network leg."""
        if window_bytes <= 0:
            raise ValueError(f"tcp_window: must be positive, got {window_bytes}")
        self.network = replace(self.network, window_bytes=float(window_bytes))

    # --- engine ------------------------------------------------------------------------------
    def _next_send(self) -> float:
        if self._stopped:
            return math.inf
        while self._pos >= len(self._times):
            self._block += 1
            block = draw_block(self.config.workload, self.seed, self._block)
            self._times = block.times.tolist()
            self._prompts = block.prompts.tolist()
            self._outputs = block.outputs.tolist()
            self._pos = 0
        return self._times[self._pos]

    def _advance(self, t: float) -> None:
        for rep in self.replicas:
            if rep.t_next <= t:
                rep.advance(t)
        if self._done:
            tab = self.table
            net = self.network
            rate = net.throughput_bps()
            tail = net.rtt_s / 2.0 + self.config.workload.bytes_per_output_chunk * 8.0 / rate
            for tf, req in self._done:
                if tab.status[req] == 1:
                    self.deliver_t[req] = tf + tail
                    self.first_client_t[req] = tab.first_t[req] + tail
                    heapq.heappush(self._deliveries, tf + tail)
                else:
                    self.deliver_t[req] = tf
                    heapq.heappush(self._deliveries, tf)
            self._done.clear()

    def _send(self, t: float) -> None:
        self._advance(t)
        deliveries = self._deliveries
        while deliveries and deliveries[0] <= t:
            heapq.heappop(deliveries)
            self._left += 1
        waiting = sum(len(r.waiting) for r in self.replicas)
        self.samples.append((t, len(self.send_t) - self._left, waiting))
        pos = self._pos
        prompt = self._prompts[pos]
        req = self.table.add(prompt, self._outputs[pos])
        self._pos = pos + 1
        self.send_t.append(t)
        self.deliver_t.append(math.nan)
        self.first_client_t.append(math.nan)
        leg = self.network.transfer_seconds(prompt * self.config.workload.bytes_per_prompt_token)
        heapq.heappush(self._pending, (t + leg, req))

    def run_until(self, t: float) -> None:
        """Advance the simulation to time ``t`` (seconds since the start)."""
        if t < self.now:
            raise ValueError(f"cannot run back in time: now {self.now}, asked {t}")
        pending = self._pending
        replicas = self.replicas
        while True:
            ts = self._next_send()
            tb = pending[0][0] if pending else math.inf
            if ts <= tb:
                if ts > t:
                    break
                self._send(ts)
            else:
                if tb > t:
                    break
                _, req = heapq.heappop(pending)
                self._advance(tb)
                conns = [r.connections for r in replicas[: self.active]]
                replicas[self.balancer.pick(conns)].enqueue(req, tb)
        self._advance(t)
        self.now = t

    def drain(self, limit_s: float = 600.0) -> None:
        """Stop sending for good and run until every request has left (bounded by ``limit_s``)."""
        self._stopped = True
        end = self.now + limit_s
        while self.now < end:
            t = min(end, self.now + BLOCK_S)
            # Only finish what is in flight: run replicas and pending arrivals, no new sends.
            while self._pending and self._pending[0][0] <= t:
                tb, req = heapq.heappop(self._pending)
                self._advance(tb)
                conns = [r.connections for r in self.replicas[: self.active]]
                self.replicas[self.balancer.pick(conns)].enqueue(req, tb)
            self._advance(t)
            self.now = t
            if self.in_flight() == 0:
                return

    def in_flight(self) -> int:
        """Requests sent that have neither been delivered nor errored by ``now``."""
        return sum(1 for d in self.deliver_t if not d <= self.now)

    def stats(self, start: float, end: float | None = None) -> dict[str, float | None]:
        """Statistics over ``[start, end)`` (``end`` defaults to now); None where empty."""
        return window_stats(self, start, self.now if end is None else end)
