"""``tuneloop tune``'s guards before any change: one writer, preflight, no fight with a shift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.tuner_doubles import EXPERIMENT, FakeClock, MemoryApplier, ModelSignals
from tuner.cli import main
from tuner.shift.state import balancer_identity
from tuner.signals.base import SignalError
from tuner.spec import loads_experiment
from tuner.store import TrialStore
from tuner.wiring import Factories, build_loop

HAPROXY = "127.0.0.1:9999"


@pytest.fixture
def world(tmp_path: Path):
    applier = MemoryApplier({"be/a": 40, "be/b": 60})
    signals = ModelSignals(lambda: applier.state, {"be/a": 70, "be/b": 30})
    clock = FakeClock()
    factories = Factories(
        appliers=lambda exp: {"lb": applier}, signals=lambda exp: signals, clock=lambda: clock
    )
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT)
    return applier, signals, factories, exp, tmp_path / "state"


def test_a_second_tuner_on_the_same_experiment_is_refused_naming_the_holder(world, capsys):
    applier, _, factories, exp, state = world
    state.mkdir()
    other = TrialStore(state / "trials.db", FakeClock())
    try:
        other.acquire_writer("weights", holder="node-7:4242", ttl_s=600)
        code = main(["tune", str(exp), "--apply", "--state", str(state)], factories)
    finally:
        other.close()
    err = capsys.readouterr().err
    assert code == 1
    assert "node-7:4242" in err and "since" in err
    assert applier.applies == []  # nothing was touched


def test_a_failed_preflight_changes_nothing(world, capsys):
    applier, signals, factories, exp, state = world

    def broken(state):
        raise SignalError("bad_data: parse error at char 18: unclosed left parenthesis")

    signals.overrides["p50_ttft_seconds"] = broken
    code = main(["tune", str(exp), "--apply", "--state", str(state)], factories)
    err = capsys.readouterr().err
    assert code == 1
    assert "preflight" in err and "unclosed left parenthesis" in err
    assert applier.applies == []


def test_no_trial_starts_while_a_shift_holds_the_balancer(world, tmp_path: Path):
    applier, signals, _, _, state = world
    text = EXPERIMENT.replace("lb: {kind: test}", f"lb: {{kind: haproxy, address: '{HAPROXY}'}}")
    text = text.replace("budget: {trials: 8}", "budget: {trials: 8, wall_time: 2m}")
    exp = loads_experiment(text)
    state.mkdir()
    marker = state / "shift-llm.json"
    balancer = balancer_identity("haproxy", {"address": HAPROXY})
    marker.write_text(json.dumps({"balancer": balancer, "active": True, "replicas": {}}))
    lines: list[str] = []
    factories = Factories(
        appliers=lambda e: {"lb": applier}, signals=lambda e: signals, clock=FakeClock
    )
    loop = build_loop(exp, factories, state, progress=lines.append)
    try:
        result = loop.run()
    finally:
        loop.store.close()
    assert applier.applies == []
    assert result.stopped.startswith("budget: wall time (waiting for a traffic shift")
    assert any("no new trial while traffic shift active on haproxy:" in line for line in lines)
