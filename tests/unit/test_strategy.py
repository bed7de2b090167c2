"""Strategies behind the ask/tell seam."""

from __future__ import annotations

import sys

import pytest

from tuneloop.validation import ConfigError
from tuner.appliers.base import Value
from tuner.space import Space
from tuner.spec import StrategyConfig, loads_experiment
from tuner.strategy.base import InfeasibleLiar, TrialResult, replay
from tuner.strategy.optuna_tpe import OptunaTPE
from tuner.strategy.random_search import RandomSearch
from tuner.strategy.registry import build_strategy
from tuner.strategy.skopt_gp import SkoptGP

TEXT = """
name: s
appliers: {lb: {kind: x}}
knobs:
  - {name: x, type: real, applier: lb, target: a, class: hot, bounds: [-5, 5]}
  - {name: n, type: int, applier: lb, target: b, class: hot, bounds: [1, 64], log: true}
objective: {signal: p99_ttft_seconds}
"""
SPACE = Space(loads_experiment(TEXT).knobs)


def loss(p):
    return (p["x"] - 1.5) ** 2 + (p["n"] - 16) ** 2 / 100.0


def optimise(strategy, n):
    best = float("inf")
    for _ in range(n):
        p = strategy.ask()
        value = loss(p)
        best = min(best, value)
        strategy.tell(p, TrialResult(value))
    return best


@pytest.mark.parametrize("cls", [SkoptGP, RandomSearch, OptunaTPE])
def test_initial_points_come_first(cls):
    initial = [{"x": 0.0, "n": 8}, {"x": 2.0, "n": 32}]
    strategy = cls(SPACE, seed=1, initial=initial)
    assert strategy.ask() == initial[0]
    strategy.tell(initial[0], TrialResult(loss(initial[0])))
    assert strategy.ask() == initial[1]


def test_gp_beats_random_on_a_smooth_problem():
    gp = optimise(SkoptGP(SPACE, seed=0, n_initial_points=5), 20)
    rnd = optimise(RandomSearch(SPACE, seed=0), 20)
    assert gp < 0.05
    assert gp <= rnd


def test_tpe_makes_progress():
    tpe = OptunaTPE(SPACE, seed=0, n_initial_points=5)
    assert optimise(tpe, 25) < 1.0


def test_gp_tells_only_finite_values_and_holds_infeasible():
    gp = SkoptGP(SPACE, seed=0)
    gp.tell({"x": 0.0, "n": 4}, TrialResult(None, valid=False))
    gp.tell({"x": 1.0, "n": 4}, TrialResult(None, feasible=False))
    assert gp.observations == 0  # invalid never told, infeasible held until a feasible value
    gp.tell({"x": 2.0, "n": 4}, TrialResult(2.0))
    gp.tell({"x": 3.0, "n": 4}, TrialResult(4.0))
    assert gp.observations == 3
    assert gp._opt.yi[1] == pytest.approx(2.0 + 0.2)  # worst feasible at the time + margin
    gp.tell({"x": 4.0, "n": 4}, TrialResult(None, feasible=False))
    assert gp._opt.yi[-1] == pytest.approx(4.0 + 0.2)


def test_liar_margin():
    liar = InfeasibleLiar()
    assert liar.value() is None
    liar.observe(3.0)
    assert liar.value() == pytest.approx(3.3)
    liar.observe(1.0)
    assert liar.value() == pytest.approx(3.2)


def test_replay_batches_for_gp_and_skips_tried_initial_points():
    initial: list[dict[str, Value]] = [{"x": 0.0, "n": 8}, {"x": 2.0, "n": 32}]
    gp = SkoptGP(SPACE, seed=0, initial=initial)
    replay(gp, [(initial[0], TrialResult(1.0)), ({"x": -1.0, "n": 2}, TrialResult(3.0))])
    assert gp.observations == 2
    assert gp.ask() == initial[1]


def test_tpe_learns_a_config_it_did_not_propose():
    tpe = OptunaTPE(SPACE, seed=0)
    tpe.ask()
    tpe.tell({"x": 0.5, "n": 3}, TrialResult(0.7))  # the guard changed the proposal
    states = [t.state.name for t in tpe._study.trials]
    assert states.count("COMPLETE") == 1 and states.count("FAIL") == 1
    done = next(t for t in tpe._study.trials if t.state.name == "COMPLETE")
    assert done.params == {"x": 0.5, "n": 3} and done.value == 0.7


def test_registry_builds_by_name_and_optuna_missing_is_clear(monkeypatch):
    assert isinstance(build_strategy(StrategyConfig(name="random"), SPACE), RandomSearch)
    assert isinstance(build_strategy(StrategyConfig(), SPACE), SkoptGP)
    with pytest.raises(ConfigError, match=r"strategy\.name: must be one of"):
        build_strategy(StrategyConfig(name="nope"), SPACE)
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match=r"strategy.name: optuna-tpe needs the optional 'optuna'"):
        build_strategy(StrategyConfig(name="optuna-tpe"), SPACE)
