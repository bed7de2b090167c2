"""The efficiency benchmark's scoring: true regret of what is left applied, failures, intervals."""

from __future__ import annotations

import math

import numpy as np

from bench.tuner_efficiency import best_observed, median_ci, score, window_seed


def _run(value: float, feasible: bool) -> dict:
    return {"applied": {20: {"true_value": value, "true_feasible": feasible, "params": {}}}}


def test_regret_is_relative_to_the_optimum_and_a_violation_is_infinite():
    runs = [_run(11.0, True), _run(9.0, False), _run(10.0, True)]
    assert score(runs, 10.0, 20) == [0.1, math.inf, 0.0]


def test_median_interval_holds_the_median_and_survives_infinities():
    rng = np.random.RandomState(0)
    med, low, high = median_ci([0.1, 0.2, 0.3, math.inf, 0.15, 0.12, 0.18], rng)
    assert med == 0.18
    assert low <= med <= high
    assert math.isfinite(low)


def test_best_observed_ignores_infeasible_windows():
    trace = [({"x": 1}, 0.5, False), ({"x": 2}, 0.9, True), ({"x": 3}, 0.7, True)]
    assert best_observed(trace) == {"x": 3}
    assert best_observed(trace[:1]) is None


def test_trial_windows_differ_per_trial_and_seed_but_not_per_contender():
    seeds = {window_seed(s, t) for s in range(30) for t in range(30)}
    assert len(seeds) == 900
