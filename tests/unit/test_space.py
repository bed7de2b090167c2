"""Search space and domain-informed initial points."""

from __future__ import annotations

import pytest
from skopt.space import Categorical, Integer, Real

from tuner.appliers.base import Value
from tuner.space import Space, bdp_bytes, capacity_weights, coerce, initial_points
from tuner.spec import loads_experiment

TEXT = """
name: s
appliers: {lb: {kind: x}, nodes: {kind: y}}
knobs:
  - {name: wa, type: int, applier: lb, target: a, class: hot, bounds: [1, 256],
     init: {capacity: 30}}
  - {name: wb, type: int, applier: lb, target: b, class: hot, bounds: [1, 256],
     init: {capacity: 10}}
  - {name: rmem, type: int, applier: nodes, target: r, class: cold, bounds: [4096, 268435456],
     log: true, init: {bdp: {bandwidth_bps: 100000000000, rtt: 0.2ms}}}
  - {name: frac, type: real, applier: nodes, target: f, class: warm, bounds: [0.1, 0.9]}
  - {name: cc, type: categorical, applier: nodes, target: c, class: cold, values: [cubic, bbr]}
objective: {signal: p99_ttft_seconds}
"""


def test_dimensions_follow_knobs():
    space = Space(loads_experiment(TEXT).knobs)
    dims = space.dimensions()
    assert isinstance(dims[0], Integer) and dims[0].bounds == (1, 256)
    assert isinstance(dims[2], Integer) and dims[2].prior == "log-uniform"
    assert isinstance(dims[3], Real) and dims[3].prior == "uniform"
    assert isinstance(dims[4], Categorical) and list(dims[4].categories) == ["cubic", "bbr"]
    params = {"wa": 3, "wb": 4.6, "rmem": 1e9, "frac": 0.5, "cc": "bbr"}
    assert space.to_params(space.to_point(params)) == {
        "wa": 3,
        "wb": 5,
        "rmem": 268435456,
        "frac": 0.5,
        "cc": "bbr",
    }


def test_coerce_rejects_unknown_category():
    knob = loads_experiment(TEXT).knob("cc")
    with pytest.raises(ValueError, match="cc: 'reno' is not one of cubic, bbr"):
        coerce(knob, "reno")


def test_bdp_and_capacity_helpers():
    assert bdp_bytes(100e9, 0.0002) == pytest.approx(2.5e6)
    assert capacity_weights({"a": 30, "b": 10, "c": 0}, 1, 256) == {"a": 256, "b": 85, "c": 1}
    assert capacity_weights({"a": 30, "b": 10}, 1, 256, top=100) == {"a": 100, "b": 33}
    with pytest.raises(ValueError):
        capacity_weights({"a": 0.0}, 1, 10)


def test_initial_points_current_first_then_domain():
    exp = loads_experiment(TEXT)
    current: dict[str, Value] = {"wa": 100, "wb": 100, "rmem": 212992, "frac": 0.5, "cc": "cubic"}
    points = initial_points(exp.knobs, current, {"wa": 30.0, "wb": 10.0})
    assert points[0] == current
    assert points[1]["wa"] == 100 and points[1]["wb"] == 33  # proportional, top kept at 100
    assert points[1]["rmem"] == 2_500_000 and points[2]["rmem"] == 5_000_000
    assert points[1]["frac"] == 0.5 and points[1]["cc"] == "cubic"
    assert len(points) == 3


def test_initial_points_without_hints_is_current_only():
    exp = loads_experiment(TEXT)
    current: dict[str, Value] = {"wa": 100, "wb": 100, "rmem": 212992, "frac": 0.5, "cc": "cubic"}
    assert initial_points(exp.knobs[3:], current, {}) == [{"frac": 0.5, "cc": "cubic"}]


def test_capacity_weights_round_only_integer_knobs():
    real = capacity_weights({"a": 3.0, "b": 1.0, "c": 0.0}, 0.5, 4.0, integer=False)
    assert real == {"a": 4.0, "b": pytest.approx(4.0 / 3.0), "c": 0.5}  # exact, clipped at low
    assert capacity_weights({"a": 3.0, "b": 1.0}, 1, 4) == {"a": 4, "b": 1}  # 1.33 rounds


def test_initial_points_keep_real_weights_proportional():
    text = """
name: r
appliers: {lb: {kind: x}}
knobs:
  - {name: wa, type: real, applier: lb, target: a, class: hot, bounds: [0.5, 4.0]}
  - {name: wb, type: real, applier: lb, target: b, class: hot, bounds: [0.5, 4.0]}
objective: {signal: p99_ttft_seconds}
"""
    knobs = loads_experiment(text).knobs
    points = initial_points(knobs, {"wa": 2.0, "wb": 2.0}, {"wa": 3.0, "wb": 1.0})
    assert points[1] == {"wa": 2.0, "wb": pytest.approx(2.0 / 3.0)}


def test_an_unset_current_value_starts_from_the_knobs_current_or_its_lower_bound():
    from tuner.space import initial_points
    from tuner.spec import loads_experiment

    exp = loads_experiment(
        """
name: s
appliers: {n: {kind: x}}
knobs:
  - {name: r, type: int, applier: n, target: a, class: cold, bounds: [1000, 9000]}
  - {name: w, type: int, applier: n, target: b, class: cold, bounds: [1000, 9000], current: 4000}
  - {name: c, type: categorical, applier: n, target: c, class: cold, values: [cubic, bbr]}
objective: {signal: p99_ttft_seconds}
"""
    )
    unset: dict[str, Value] = {"r": "", "c": ""}  # a key missing: read as unset too
    first = initial_points(exp.knobs, unset, {})[0]
    assert first == {"r": 1000, "w": 4000, "c": "cubic"}
