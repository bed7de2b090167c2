"""Traffic shifters inside the controller: their own threads, shared audit and metrics, and the
baselines restored when the controller stops or loses its Lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock
from prometheus_client import generate_latest

from tests.fakes.kube_apiserver import FakeApiServer
from tests.unit.tuner_doubles import (
    EXPERIMENT,
    FakeClock,
    MemoryApplier,
    ModelSignals,
    ScriptedSignals,
)
from tuneloop.validation import ConfigError
from tuner.controller_config import LeaseSettings, load_controller_config
from tuner.controller_run import EXIT_LEADERSHIP_LOST, build_controller, run_controller
from tuner.kube.election import make_election
from tuner.shift.state import active_balancers
from tuner.wiring import Factories

pytestmark = pytest.mark.timeout(60)

BALANCER = "127.0.0.1:9999"
TARGETS = [f"llm/r{i}" for i in range(3)]
BASELINE = dict.fromkeys(TARGETS, 16)


def shift_file(folder: Path, name: str = "llm", address: str = BALANCER) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "signals": {"prometheus": "http://127.0.0.1:9090"},
                "balancer": {"kind": "haproxy", "address": address},
                "replicas": [{"target": t} for t in TARGETS],
                "interval": "5s",
                "policy": {"threshold": "200ms", "ema_alpha": 1.0, "hold": "10s"},
            }
        )
    )
    return path


class Fleet:
    """The doubles a controller's shifter runs against: a balancer and scripted P99s."""

    def __init__(self) -> None:
        self.applier = MemoryApplier(BASELINE)
        self.signals = ScriptedSignals()
        self.entries: list[dict[str, Any]] = []
        # Simulated time; each slice of a wait also yields the processor a little.
        self.clock = FakeClock(on_sleep=lambda s: time.sleep(0.002))

    def factories(self, **kw: Any) -> Factories:
        return Factories(
            shift_applier=lambda c: self.applier,
            shift_signals=lambda c: self.signals,
            clock=lambda: self.clock,
            event_sink=self.entries.append,
            **kw,
        )

    def weights(self) -> dict[str, Any]:
        return self.applier.read(TARGETS)

    def actions(self) -> list[str]:
        return [str(e["action"]) for e in self.entries]


def controller_file(folder: Path, text: str) -> Path:
    path = folder / "controller.yaml"
    path.write_text(f"state: state\nmetrics_port: 0\ninterval: 1s\n{text}")
    return path


def until(done: Callable[[], bool], what: str, deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while not done():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_shifts_are_paths_relative_to_the_file_and_must_not_collide(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    shift_file(tmp_path / "s")
    cfg = load_controller_config(controller_file(tmp_path, "shifts: [s/llm.yaml]\n"))
    assert cfg.shifts == (tmp_path / "s" / "llm.yaml",) and cfg.experiments == ()
    shift_file(tmp_path / "s", "other")
    twice = controller_file(tmp_path, "shifts: [s/llm.yaml, s/other.yaml]\n")
    with pytest.raises(ConfigError, match=r"^shifts\[1\]: balancer 'haproxy:127.0.0.1:9999' is"):
        build_controller(load_controller_config(twice), Fleet().factories())


def test_a_shifter_runs_on_its_own_thread_and_is_restored_on_stop(tmp_path: Path) -> None:
    shift_file(tmp_path)
    fleet = Fleet()
    config = load_controller_config(controller_file(tmp_path, "shifts: [llm.yaml]\n"))
    stop = threading.Event()
    code: list[int] = []
    runner = threading.Thread(
        target=lambda: code.append(run_controller(config, fleet.factories(), stop=stop))
    )
    fleet.signals.p99 = {"r0": 0.9}
    runner.start()
    try:
        until(lambda: fleet.weights()["llm/r0"] <= 8, "the shifter to move traffic off r0")
        marked = {f"haproxy:{BALANCER}"}  # the state file follows the weights within the step
        until(lambda: active_balancers(tmp_path / "state") == marked, "the shift's marker")
    finally:
        stop.set()
        runner.join(20)
    assert code == [0]
    assert fleet.weights() == BASELINE, "stopping restores the baselines it changed"
    assert active_balancers(tmp_path / "state") == set(), "and clears the shift's marker"
    assert fleet.actions()[0] == "shift" and fleet.actions()[-1] == "shift-restore-all"
    audit = (tmp_path / "state" / "audit.jsonl").read_text()
    assert '"action": "shift-restore-all"' in audit, "the controller's audit log"


def test_a_failing_step_is_audited_and_the_shifter_goes_on(tmp_path: Path) -> None:
    shift_file(tmp_path)
    fleet = Fleet()
    config = load_controller_config(controller_file(tmp_path, "shifts: [llm.yaml]\n"))
    run = build_controller(config, fleet.factories())
    fleet.signals.p99 = {"r1": RuntimeError}  # a failure the shifter does not expect
    run.shifts.start()
    try:
        until(lambda: "shift-error" in fleet.actions(), "a failed step to be audited")
        fleet.signals.p99 = {"r0": 0.9}
        until(lambda: fleet.weights()["llm/r0"] < 16, "the next steps to shift r0")
    finally:
        run.shifts.stop()
    error = next(e for e in fleet.entries if e["action"] == "shift-error")
    assert "RuntimeError: r1: scripted failure" in error["error"]
    assert fleet.weights() == BASELINE
    metrics = generate_latest(run.registry).decode()
    assert 'tuneloop_shift_events_total{action="shift",shift="llm",target="llm/r0"}' in metrics
    assert "tuneloop_tuner_trials_total" in metrics, "one registry: the controller's /metrics"


def test_a_tuning_round_starts_no_trial_while_the_controllers_shift_holds_the_balancer(
    tmp_path: Path,
) -> None:
    shift_file(tmp_path)
    experiment = EXPERIMENT.replace(
        "lb: {kind: test}", f"lb: {{kind: haproxy, address: '{BALANCER}'}}"
    )
    (tmp_path / "exp.yaml").write_text(experiment)
    fleet = Fleet()
    weights = MemoryApplier({"be/a": 50, "be/b": 50})
    factories = fleet.factories(
        appliers=lambda exp: {"lb": weights},
        signals=lambda exp: ModelSignals(lambda: weights.state, {"be/a": 70, "be/b": 30}),
    )
    config = load_controller_config(
        controller_file(tmp_path, "experiments: [exp.yaml]\nshifts: [llm.yaml]\n")
    )
    run = build_controller(config, factories)
    (watch,) = run.controller.watches
    paused = watch.loop.paused  # the tuning loop's check before each trial
    assert paused is not None and paused() is None
    fleet.signals.p99 = {"r0": 0.9}
    run.shifts.start()
    try:
        until(lambda: paused() is not None, "the tuning loop to see the shift")
        assert paused() == f"traffic shift active on haproxy:{BALANCER}"
        assert fleet.weights()["llm/r0"] < 16
    finally:
        run.shifts.stop()
    assert paused() is None, "the restored shift holds nothing"


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


def test_losing_the_lease_stops_the_shifter_and_restores_the_baselines(
    api: FakeApiServer, tmp_path: Path
) -> None:
    shift_file(tmp_path)
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    fleet = Fleet()
    weights = MemoryApplier({"be/a": 50, "be/b": 50})
    factories = fleet.factories(
        appliers=lambda exp: {"lb": weights},
        signals=lambda exp: ModelSignals(lambda: weights.state, {"be/a": 70, "be/b": 30}),
    )
    lease = "lease: {namespace: tuneloop, identity: a}\n"
    config = load_controller_config(
        controller_file(tmp_path, f"experiments: [exp.yaml]\nshifts: [llm.yaml]\n{lease}")
    )

    def election(lease: LeaseSettings, on_start: Any, on_stop: Any) -> Any:
        lock = LeaseLock(lease.name, lease.namespace, lease.identity)
        lock.api_instance = client.CoordinationV1Api(
            client.ApiClient(client.Configuration(host=api.url))
        )
        fast = LeaseSettings(lease.name, lease.namespace, lease.identity, 3, 2, 1)
        return make_election(lock, fast, on_start, on_stop)

    code: list[int] = []
    runner = threading.Thread(
        target=lambda: code.append(run_controller(config, factories, election=election)),
        daemon=True,
    )
    fleet.signals.p99 = {"r0": 0.9}
    runner.start()
    until(lambda: fleet.weights()["llm/r0"] < 16, "the leader's shifter to shift r0")
    # The leader tunes on the election's thread, with the store the process opened.
    until(lambda: "apply_best" in fleet.actions(), "the leader's first tuning round")
    assert "rollback_failed" not in fleet.actions()
    assert api.get("leases", "tuneloop", "tuneloop-tuner")["spec"]["holderIdentity"] == "a"
    api.deny("update", "leases")  # the leader can no longer renew: it loses the Lease
    runner.join(20)
    assert code == [EXIT_LEADERSHIP_LOST]
    assert fleet.weights() == BASELINE
    assert [a for a in fleet.actions() if a.startswith("shift")][-1] == "shift-restore-all"
    assert active_balancers(tmp_path / "state") == set()
