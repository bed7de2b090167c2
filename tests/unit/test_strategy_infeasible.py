"""The GP strategy while every trial so far is infeasible (the stuck case the benchmark found)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from tuner.appliers.base import Value
from tuner.space import Space
from tuner.spec import loads_experiment
from tuner.strategy.base import TrialResult
from tuner.strategy.skopt_gp import SkoptGP

TEXT = """
name: s
appliers: {lb: {kind: x}}
knobs:
  - {name: batch, type: int, applier: lb, target: a, class: cold, bounds: [4, 512], log: true}
  - {name: policy, type: categorical, applier: lb, target: b, class: hot,
     values: [least_conn, wrr]}
objective: {signal: p99_e2e_latency_seconds}
"""
SPACE = Space(loads_experiment(TEXT).knobs)
START: dict[str, Value] = {"batch": 256, "policy": "least_conn"}


def outcome(p: Mapping[str, Value]) -> TrialResult:
    """Feasible only for a narrow band of batch limits, like the batching problem's ITL SLO."""
    batch = int(p["batch"])
    if not 20 <= batch <= 40:
        return TrialResult(None, feasible=False)
    return TrialResult(abs(batch - 30) + (0.5 if p["policy"] == "wrr" else 0.0))


def key(p: Mapping[str, Value]) -> tuple[Value, ...]:
    return (p["batch"], p["policy"])


def test_all_infeasible_never_repeats_a_point() -> None:
    gp = SkoptGP(SPACE, seed=0, initial=[START])
    asked = []
    for _ in range(12):
        p = gp.ask()
        asked.append(key(p))
        gp.tell(p, TrialResult(None, feasible=False))
    assert len(set(asked)) == len(asked)  # before the fix: the same point from trial 2 on
    assert gp.observations == 0 and gp.held == 12  # nothing to lie on yet: held, not told


def test_held_points_are_told_once_a_feasible_value_exists() -> None:
    gp = SkoptGP(SPACE, seed=3, initial=[START])
    for _ in range(3):
        gp.tell(gp.ask(), TrialResult(None, feasible=False))
    gp.tell({"batch": 30, "policy": "wrr"}, TrialResult(2.0))
    assert gp.observations == 4 and gp.held == 0
    assert sorted(gp._opt.yi) == [2.0, 2.2, 2.2, 2.2]  # the liar's value for each held point


def test_infeasible_start_finds_the_feasible_band_without_repeats() -> None:
    gp = SkoptGP(SPACE, seed=1, initial=[START])
    asked = []
    best = None
    for _ in range(30):
        p = gp.ask()
        asked.append(key(p))
        result = outcome(p)
        gp.tell(p, result)
        if result.value is not None:
            best = result.value if best is None else min(best, result.value)
    assert all(a != b for a, b in itertools.pairwise(asked))
    assert len(set(asked)) == len(asked)
    assert best is not None and best <= 3.0


def test_an_invalid_trial_does_not_make_the_next_ask_repeat_it() -> None:
    gp = SkoptGP(SPACE, seed=2)
    for b in (8, 30, 64, 128, 300):
        gp.tell({"batch": b, "policy": "wrr"}, TrialResult(float(b)))
    first = gp.ask()
    gp.tell(first, TrialResult(None, valid=False))  # no traffic: nothing told, GP unchanged
    assert key(gp.ask()) != key(first)


def test_local_candidates_stay_in_bounds_and_move() -> None:
    gp = SkoptGP(SPACE, seed=4)
    start = [512, "wrr"]
    for _ in range(200):
        n = gp._neighbour(start)
        assert n != start
        assert 4 <= n[0] <= 512 and isinstance(n[0], int) and n[1] in ("least_conn", "wrr")
