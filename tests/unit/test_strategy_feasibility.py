"""The feasibility model and the GP strategy's use of it (constrained expected improvement)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from tuner.appliers.base import Value
from tuner.space import Space
from tuner.spec import loads_experiment
from tuner.strategy.base import TrialResult
from tuner.strategy.feasibility import FeasibilityModel
from tuner.strategy.skopt_gp import SkoptGP

TEXT = """
name: f
appliers: {lb: {kind: x}}
knobs:
  - {name: batch, type: int, applier: lb, target: a, class: cold, bounds: [4, 512], log: true}
  - {name: frac, type: real, applier: lb, target: b, class: hot, bounds: [0.0, 1.0]}
objective: {signal: p99_e2e_latency_seconds}
"""
SPACE = Space(loads_experiment(TEXT).knobs)


def outcome(p: Mapping[str, Value]) -> TrialResult:
    """Bigger batches are faster until an SLO cuts them off at 64: the optimum is on the edge."""
    batch, frac = int(p["batch"]), float(p["frac"])
    if batch > 64:
        return TrialResult(None, feasible=False)
    return TrialResult(100.0 / batch + (frac - 0.3) ** 2)


def test_model_separates_feasible_from_infeasible_points() -> None:
    xs = [[x / 10.0] for x in range(11)]
    model = FeasibilityModel()
    model.fit(xs, [x[0] < 0.5 for x in xs])
    p = model.probability([[0.1], [0.3], [0.7], [0.9]])
    assert p[0] > 0.8 and p[1] > 0.6 and p[2] < 0.4 and p[3] < 0.2
    assert np.all(np.diff(model.probability([[x / 20.0] for x in range(21)])) < 0.05)


def test_model_without_both_labels_predicts_feasible() -> None:
    model = FeasibilityModel()
    model.fit([[0.1], [0.9]], [True, True])
    assert not model.fitted and model.probability([[0.5]]).tolist() == [1.0]
    model.fit([[0.1], [0.9]], [False, False])
    assert model.probability([[0.5], [0.2]]).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="2 points but 1 labels"):
        model.fit([[0.1], [0.9]], [True])


HISTORY = [(8, 0.1), (16, 0.9), (32, 0.5), (48, 0.2), (64, 0.7), (90, 0.1), (100, 0.4), (200, 0.6)]


def test_the_strategy_learns_where_the_constraint_cuts_off() -> None:
    gp = SkoptGP(SPACE, seed=0)
    for batch, frac in [*HISTORY, (400, 0.3), (512, 0.8)]:
        told: dict[str, Value] = {"batch": batch, "frac": frac}
        gp.tell(told, outcome(told))
    xt = gp._opt.space.transform([[300, 0.5], [32, 0.5]])
    far, near = gp._feasibility().probability(xt)
    assert far < 0.2 and near > 0.9
    for _ in range(6):  # the optimum is at the edge; the proposals refine it from inside
        p = gp.ask()
        assert int(p["batch"]) <= 72
        gp.tell(p, outcome(p))


def test_local_fraction_is_checked() -> None:
    with pytest.raises(ValueError, match="local_fraction must be within"):
        SkoptGP(SPACE, local_fraction=1.5)
