"""Small implementations of the tuner's own seams (Applier, Signals, Clock) for tests.

``python -m tests.unit.tuner_doubles STATE_DIR`` runs the tuning loop in apply mode against a
file-backed applier; the kill -9 test starts it, kills it at random points and resumes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from tuner.appliers.base import Applier, ApplierError, Value
from tuner.signals.base import SignalError, SignalRef, Signals

if TYPE_CHECKING:
    from tuner.loop import TuningLoop
    from tuner.store import Trial, TrialStore

# A traffic shifter over three HAProxy servers, as its YAML file would hold it.
SHIFT_CONFIG: dict[str, Any] = {
    "name": "llm",
    "signals": {"prometheus": "http://127.0.0.1:9090"},
    "balancer": {"kind": "haproxy", "address": "127.0.0.1:9999"},
    "replicas": [{"target": f"llm/r{i}"} for i in range(3)],
    "interval": "5s",
    "policy": {"threshold": "200ms", "ema_alpha": 1.0, "hold": "10s", "step_ratio": 0.25},
}

EXPERIMENT = """
name: weights
mode: apply
appliers:
  lb: {kind: test}
knobs:
  - {name: a, type: int, applier: lb, target: be/a, class: hot, bounds: [1, 100]}
  - {name: b, type: int, applier: lb, target: be/b, class: hot, bounds: [1, 100]}
objective: {signal: p50_ttft_seconds, direction: minimize}
constraints:
  - {name: p99, signal: p99_ttft_seconds, max: 5.0}
measurement: {warmup: {hot: 5s}, window: 30s, check_interval: 10s, min_request_rate: 1}
budget: {trials: 8}
safety: {max_relative_step: 1.0, cooldown: 1s}
strategy: {name: random, seed: 3}
"""


class FakeClock:
    """Simulated time: ``sleep`` advances ``now`` (and may call a hook, e.g. a tiny real sleep)."""

    def __init__(
        self, start: float = 1_700_000_000.0, on_sleep: Callable[[float], None] | None = None
    ) -> None:
        self.t = start
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += max(seconds, 0.0)
        if self.on_sleep is not None:
            self.on_sleep(seconds)


class MemoryApplier(Applier):
    """Targets held in a dict; ``fail_on`` makes apply raise for chosen values, ``drop`` ignores
    writes to a target so verify fails."""

    kind = "memory"

    def __init__(self, state: Mapping[str, Value]) -> None:
        self.state: dict[str, Value] = dict(state)
        self.applies: list[dict[str, Value]] = []
        self.fail_on: Callable[[Mapping[str, Value]], bool] = lambda desired: False
        self.drop: set[str] = set()

    def read(self, targets: list[str]) -> dict[str, Value]:
        missing = [t for t in targets if t not in self.state]
        if missing:
            raise ApplierError(f"memory: unknown target {missing[0]!r}")
        return {t: self.state[t] for t in targets}

    def apply(self, desired: Mapping[str, Value]) -> None:
        if self.fail_on(desired):
            raise ApplierError(f"memory: refused {dict(desired)}")
        self.applies.append(dict(desired))
        for key, value in desired.items():
            if key not in self.drop:
                self.state[key] = value


class FileApplier(Applier):
    """Targets in a JSON file, written one target at a time (fsync'd rename), so a kill can land
    between two targets of one apply."""

    kind = "file"

    def __init__(self, path: Path, pause_s: float = 0.0) -> None:
        self.path = Path(path)
        self.pause_s = pause_s

    def _load(self) -> dict[str, Value]:
        return json.loads(self.path.read_text())

    def read(self, targets: list[str]) -> dict[str, Value]:
        data = self._load()
        return {t: data[t] for t in targets}

    def apply(self, desired: Mapping[str, Value]) -> None:
        for key, value in desired.items():
            data = self._load()
            if data.get(key) == value:
                continue
            data[key] = value
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as fh:
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            if self.pause_s:
                time.sleep(self.pause_s)


class ModelSignals(Signals):
    """Signals computed from a state function: p50 = distance from an optimum, p99 = 2 x p50.

    ``overrides`` maps a signal name to a value (or a callable of the state) to inject
    no-data, breaches and low traffic."""

    def __init__(
        self, state: Callable[[], Mapping[str, Value]], optimum: Mapping[str, float]
    ) -> None:
        self.state = state
        self.optimum = dict(optimum)
        self.overrides: dict[str, Any] = {}
        self.calls: list[tuple[str, float]] = []

    def latency(self) -> float:
        s = self.state()
        return 0.1 + sum((float(s[k]) - v) ** 2 for k, v in self.optimum.items()) / 1000.0

    def value(self, ref: SignalRef, window_s: float) -> float | None:
        name = ref.signal or ref.query or ""
        self.calls.append((name, window_s))
        if name in self.overrides:
            over = self.overrides[name]
            return over(self.state()) if callable(over) else over
        if name == "request_rate":
            return 50.0
        if name == "p99_ttft_seconds":
            return 2 * self.latency()
        return self.latency()


class ScriptedSignals(Signals):
    """A shifter's per-replica P99 from a dict the test changes, keyed by the agent target in
    the query (``target="r0"``; 0.1 s when not set); the value ``SignalError`` raises it, any
    other exception type raises that (a failure the shifter does not expect)."""

    def __init__(self) -> None:
        self.p99: dict[str, float | type[Exception] | None] = {}

    def value(self, ref: SignalRef, window_s: float) -> float | None:
        assert ref.query is not None
        target = ref.query.split('target="')[1].split('"')[0]
        value = self.p99.get(target, 0.1)
        if value is SignalError:
            raise SignalError("prometheus unreachable")
        if isinstance(value, type) and issubclass(value, Exception):
            raise value(f"{target}: scripted failure")
        return value


def file_loop(state_dir: Path, pause_s: float = 0.0):  # pragma: no cover - used by a subprocess
    from tuner.audit import AuditLog
    from tuner.loop import TuningLoop
    from tuner.spec import loads_experiment
    from tuner.store import TrialStore

    exp = loads_experiment(EXPERIMENT)
    applier = FileApplier(state_dir / "lb.json", pause_s)
    signals = ModelSignals(lambda: applier.read(["be/a", "be/b"]), {"be/a": 70, "be/b": 30})
    clock = FakeClock(on_sleep=lambda s: time.sleep(pause_s))
    store = TrialStore(state_dir / "trials.db", clock)
    audit = AuditLog(state_dir / "audit.jsonl", clock=clock)
    return (
        TuningLoop(
            exp,
            {"lb": applier},
            signals,
            store,
            clock=clock,
            audit=audit,
            progress=lambda line: None,
        ),
        applier,
        store,
    )


if __name__ == "__main__":  # pragma: no cover
    loop, _, _ = file_loop(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    loop.run()


class LoopKit(NamedTuple):
    """A tuning loop on test doubles, and the doubles, for tests to drive and inspect."""

    loop: TuningLoop
    applier: MemoryApplier
    signals: ModelSignals
    store: TrialStore
    clock: FakeClock
    lines: list[str]


def make_loop(tmp_path: Path, text: str = EXPERIMENT, start: tuple[int, int] = (50, 50)) -> LoopKit:
    """The test experiment's loop: a memory applier at ``start``, a latency model with its
    optimum at (70, 30), a simulated clock, a store and audit log under ``tmp_path``."""
    from tuner.audit import AuditLog
    from tuner.loop import TuningLoop
    from tuner.spec import loads_experiment
    from tuner.store import TrialStore

    exp = loads_experiment(text)
    applier = MemoryApplier({"be/a": start[0], "be/b": start[1]})
    signals = ModelSignals(lambda: applier.state, {"be/a": 70, "be/b": 30})
    clock = FakeClock()
    store = TrialStore(tmp_path / "trials.db", clock)
    audit = AuditLog(tmp_path / "audit.jsonl", clock=clock)
    lines: list[str] = []
    loop = TuningLoop(
        exp, {"lb": applier}, signals, store, clock=clock, audit=audit, progress=lines.append
    )
    return LoopKit(loop, applier, signals, store, clock, lines)


def incumbent(store: TrialStore, name: str = "weights") -> tuple[Trial, float]:
    """The promoted incumbent and its value; the test fails if there is none."""
    found = store.incumbent(name)
    assert found is not None, f"{name}: no incumbent"
    return found


def measured(value: float | None) -> float:
    """A value the test expects to be measured (not None)."""
    assert value is not None
    return value
