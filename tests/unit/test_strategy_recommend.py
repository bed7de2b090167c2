"""``recommend()``: what a strategy leaves applied is a robust estimate, not a lucky window."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.space import Space
from tuner.spec import loads_experiment
from tuner.strategy.base import Params, TrialResult
from tuner.strategy.optuna_tpe import OptunaTPE
from tuner.strategy.random_search import RandomSearch
from tuner.strategy.skopt_gp import SkoptGP

TEXT = """
name: r
appliers: {lb: {kind: x}}
knobs:
  - {name: x, type: int, applier: lb, target: a, class: hot, bounds: [0, 40]}
objective: {signal: p99_ttft_seconds}
"""
SPACE = Space(loads_experiment(TEXT).knobs)


def truth(x: int) -> float:
    """A broad valley around x = 30 (1.0) and a plateau at 2.0 around x = 8."""
    return 1.0 + (x - 30) ** 2 / 400.0 if x >= 20 else 2.0


def noisy_history(seed: int = 0) -> list[tuple[Params, float]]:
    """Every other point measured once with noise; one window at x = 8 was lucky (0.7)."""
    rng = np.random.RandomState(seed)
    history: list[tuple[Params, float]] = [
        ({"x": x}, truth(x) + rng.normal(0.0, 0.08)) for x in range(0, 41, 2)
    ]
    return [({"x": 8}, 0.7) if p["x"] == 8 else (p, v) for p, v in history]


def test_gp_recommends_the_configuration_better_on_average_not_the_lucky_one():
    gp = SkoptGP(SPACE, seed=0)
    gp.tell_many([(p, TrialResult(v)) for p, v in noisy_history()])
    best_observed = min(noisy_history(), key=lambda pv: pv[1])[0]
    assert best_observed == {"x": 8}  # the lucky window is the best single observation
    chosen = gp.recommend()
    assert chosen is not None
    x = chosen["x"]
    assert isinstance(x, int)
    assert truth(x) < 1.2, chosen  # in the valley around 30, not on the plateau


def test_gp_recommends_only_measured_feasible_configurations():
    gp = SkoptGP(SPACE, seed=0)
    assert gp.recommend() is None
    gp.tell({"x": 30}, TrialResult(None, feasible=False))
    assert gp.recommend() is None  # nothing feasible measured yet
    gp.tell({"x": 10}, TrialResult(2.0))
    gp.tell({"x": 12}, TrialResult(2.1))
    assert gp.recommend() in ({"x": 10}, {"x": 12})
    assert gp.recommend() != {"x": 30}


def test_gp_leaves_out_points_the_feasibility_model_calls_infeasible():
    gp = SkoptGP(SPACE, seed=0)
    history: list[tuple[Params, TrialResult]] = [
        ({"x": x}, TrialResult(None, feasible=False)) for x in (34, 36, 38, 40)
    ]
    history += [({"x": 35}, TrialResult(0.5))]  # a lucky feasible window among breaches
    history += [({"x": x}, TrialResult(1.0 + x / 100)) for x in (2, 6, 10, 14)]
    gp.tell_many(history)
    chosen = gp.recommend()
    assert chosen is not None
    x = chosen["x"]
    assert isinstance(x, int) and x <= 14


@pytest.mark.parametrize("make", [lambda: RandomSearch(SPACE, seed=0), lambda: OptunaTPE(SPACE)])
def test_random_and_tpe_recommend_the_best_feasible_observation(make):
    strategy = make()
    assert strategy.recommend() is None
    for x, value, feasible in ((5, 1.5, True), (9, 0.4, False), (12, 0.9, True), (20, 1.1, True)):
        params = {"x": x}
        if isinstance(strategy, OptunaTPE):
            strategy.ask()
        strategy.tell(params, TrialResult(value if feasible else None, feasible=feasible))
    strategy.tell({"x": 30}, TrialResult(None, valid=False))
    assert strategy.recommend() == {"x": 12}
