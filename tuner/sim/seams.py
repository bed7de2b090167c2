"""The simulated fleet behind the tuner's own seams: an Applier, a Signals and a Clock.

The loop drives the sim exactly as it drives a cluster: it applies knobs through ``SimApplier``
(kind ``sim``), sleeps on ``SimClock`` (which advances the fleet), and reads ``SimSignals`` over
the last window. Targets: ``weight:<replica>`` (e.g. ``weight:r0``), ``batch_limit``,
``replicas`` and ``tcp_window`` (bytes). The sim has no Prometheus, so PromQL queries raise
SignalError; only the built-in signal names are answered.
"""

from __future__ import annotations

from collections.abc import Mapping

from tuner.appliers.base import Applier, ApplierError, Value
from tuner.signals.base import BUILTIN_SIGNALS, SignalError, SignalRef, Signals
from tuner.sim.fleet import SimFleet

TARGETS = ("batch_limit", "replicas", "tcp_window", "weight:<replica>")


class SimApplier(Applier):
    """Applies knobs to a SimFleet."""

    kind = "sim"

    def __init__(self, fleet: SimFleet) -> None:
        self.fleet = fleet

    def _replica(self, target: str) -> int:
        name = target.split(":", 1)[1]
        if not name.startswith("r") or not name[1:].isdigit():
            raise ApplierError(f"sim: target {target!r}: replicas are named r0, r1, ...")
        index = int(name[1:])
        if index >= self.fleet.active:
            raise ApplierError(
                f"sim: target {target!r}: no such replica (have {self.fleet.active})"
            )
        return index

    def read(self, targets: list[str]) -> dict[str, Value]:
        fleet = self.fleet
        out: dict[str, Value] = {}
        for target in targets:
            if target == "batch_limit":
                out[target] = fleet.batch_limit
            elif target == "replicas":
                out[target] = fleet.active
            elif target == "tcp_window":
                out[target] = int(fleet.network.window_bytes)
            elif target.startswith("weight:"):
                out[target] = fleet.weights[self._replica(target)]
            else:
                raise ApplierError(f"sim: unknown target {target!r} (known: {', '.join(TARGETS)})")
        return out

    def apply(self, desired: Mapping[str, Value]) -> None:
        fleet = self.fleet
        # Scale first so weights for new replicas have somewhere to go.
        order = sorted(desired, key=lambda k: k != "replicas")
        for target in order:
            value = desired[target]
            if isinstance(value, str | bool):
                raise ApplierError(f"sim: target {target!r} needs a number, got {value!r}")
            try:
                if target == "batch_limit":
                    fleet.set_batch_limit(_whole(target, value))
                elif target == "replicas":
                    fleet.set_replicas(_whole(target, value))
                elif target == "tcp_window":
                    fleet.set_tcp_window(_whole(target, value))
                elif target.startswith("weight:"):
                    fleet.set_weight(self._replica(target), float(value))
                else:
                    raise ApplierError(
                        f"sim: unknown target {target!r} (known: {', '.join(TARGETS)})"
                    )
            except ValueError as exc:
                raise ApplierError(f"sim: target {target!r}: {exc}") from None


def _whole(target: str, value: float) -> int:
    if float(value) != int(value):
        raise ApplierError(f"sim: target {target!r} needs a whole number, got {value!r}")
    return int(value)


class SimSignals(Signals):
    """Built-in signals computed from the fleet over the last window."""

    def __init__(self, fleet: SimFleet) -> None:
        self.fleet = fleet

    def value(self, ref: SignalRef, window_s: float) -> float | None:
        if ref.query is not None:
            raise SignalError(
                f"the simulated fleet has no Prometheus; PromQL query {ref.query!r} is not "
                f"supported (use one of the built-in signals: {', '.join(BUILTIN_SIGNALS)})"
            )
        name = ref.signal or ""
        if name not in BUILTIN_SIGNALS:
            raise SignalError(f"unknown signal {name!r} (known: {', '.join(BUILTIN_SIGNALS)})")
        fleet = self.fleet
        start = max(0.0, fleet.now - window_s)
        if fleet.now <= start:
            return None
        stats = fleet.stats(start)
        if name not in stats:
            modelled = ", ".join(n for n in BUILTIN_SIGNALS if n in stats)
            raise SignalError(
                f"the simulated fleet does not model {name!r} (it answers: {modelled})"
            )
        return stats[name]


class SimClock:
    """Simulated time: ``sleep`` advances the fleet; ``now`` is ``epoch`` + simulated seconds."""

    def __init__(self, fleet: SimFleet, epoch: float = 0.0) -> None:
        self.fleet = fleet
        self.epoch = epoch

    def now(self) -> float:
        return self.epoch + self.fleet.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.fleet.run_until(self.fleet.now + seconds)
