"""The shift policy: EMA, thresholds, hysteresis, bounded steps and capacity guards."""

from __future__ import annotations

import pytest

from tuner.shift.policy import ShiftAction, ShiftSettings, initial_states, step, trip_threshold

BASE = {"a": 16, "b": 16, "c": 16}
FAST = 0.1


def run(readings_per_tick, settings, start=None, interval=5.0):
    states = start or initial_states(BASE)
    results = []
    for i, readings in enumerate(readings_per_tick):
        result = step(states, readings, settings, now=i * interval)
        states = result.states
        results.append(result)
    return results


def test_one_noisy_window_does_not_shift():
    settings = ShiftSettings(ema_alpha=0.3, threshold_s=0.2)
    results = run([{"a": FAST, "b": FAST, "c": FAST}, {"a": 0.4, "b": FAST, "c": FAST}], settings)
    assert results[-1].weights == BASE  # 0.3*0.4 + 0.7*0.1 = 0.19 < 0.2
    assert not results[-1].active


def test_a_slow_replica_is_stepped_down_while_it_stays_slow_and_not_below_min():
    settings = ShiftSettings(ema_alpha=1.0, threshold_s=0.2, step_ratio=0.25, min_weight=2)
    ticks = [{"a": 0.8, "b": FAST, "c": FAST}] * 6
    results = run(ticks, settings)
    weights = [r.weights["a"] for r in results]
    assert weights == [12, 8, 4, 2, 2, 2]
    assert all(r.weights["b"] == 16 and r.weights["c"] == 16 for r in results)
    assert results[0].events[0].action is ShiftAction.SHIFT
    assert results[0].events[0].smoothed == pytest.approx(0.8)


def test_restore_waits_for_the_hold_under_the_clear_line_then_steps_back():
    settings = ShiftSettings(ema_alpha=1.0, threshold_s=0.2, clear_ratio=0.8, hold_s=10.0)
    slow = [{"a": 0.8, "b": FAST, "c": FAST}] * 2  # 16 -> 12 -> 8
    between = [{"a": 0.18, "b": FAST, "c": FAST}] * 3  # under trip, over clear (0.16): hold
    healthy = [{"a": FAST, "b": FAST, "c": FAST}] * 8
    results = run(slow + between + healthy, settings)
    weights = [r.weights["a"] for r in results]
    assert weights[:5] == [12, 8, 8, 8, 8]
    # under the clear line from tick 5 (t=25); restores start once 10 s have passed (t=35)
    assert weights[5:8] == [8, 8, 12]
    assert weights[-1] == 16
    assert results[-1].states["a"].reversals == 1  # down, then back up: one reversal
    assert not results[-1].active


def test_missing_readings_are_never_read_as_fast():
    settings = ShiftSettings(ema_alpha=1.0, threshold_s=0.2, hold_s=0.0)
    results = run(
        [{"a": 0.8, "b": FAST, "c": FAST}] + [{"a": None, "b": FAST, "c": FAST}] * 4, settings
    )
    assert [r.weights["a"] for r in results] == [12, 8, 4, 1, 1]  # still slow: keeps stepping


def test_max_drained_limits_how_many_replicas_are_shifted():
    settings = ShiftSettings(ema_alpha=1.0, threshold_s=0.2, max_drained=1)
    states = initial_states({"a": 16, "b": 16, "c": 16, "d": 16})
    result = step(states, {"a": 0.9, "b": 0.5, "c": FAST, "d": FAST}, settings, now=0.0)
    assert result.weights == {"a": 12, "b": 16, "c": 16, "d": 16}  # the worst first
    assert [e.action for e in result.events if e.replica == "b"] == [ShiftAction.BLOCKED]


def test_a_fleet_wide_slowdown_shifts_nothing():
    absolute = ShiftSettings(ema_alpha=1.0, threshold_s=0.2)
    relative = ShiftSettings(ema_alpha=1.0, threshold_s=None, relative=2.0)
    slow = [{"a": 0.8, "b": 0.7, "c": 0.9}] * 3
    for settings in (absolute, relative):
        assert run(slow, settings)[-1].weights == BASE


def test_no_shift_onto_replicas_without_headroom():
    settings = ShiftSettings(ema_alpha=1.0, threshold_s=0.2, headroom_ratio=0.5)
    # b and c are under the trip line but over the headroom line (0.1): no room for a's load
    result = step(initial_states(BASE), {"a": 0.9, "b": 0.15, "c": 0.15}, settings, now=0.0)
    assert result.weights == BASE
    assert "no headroom" in result.events[0].reason


def test_relative_threshold_follows_the_fleet_median():
    settings = ShiftSettings(threshold_s=None, relative=2.0)
    assert trip_threshold(settings, {"a": 0.1, "b": 0.2, "c": 0.3}) == pytest.approx(0.4)
    assert trip_threshold(settings, {"a": 0.1, "b": None, "c": None}) is None


def test_settings_are_validated():
    with pytest.raises(ValueError, match="threshold_s, relative"):
        ShiftSettings(threshold_s=None, relative=None)
    with pytest.raises(ValueError, match="clear_ratio"):
        ShiftSettings(clear_ratio=1.0)
    with pytest.raises(ValueError, match="relative"):
        ShiftSettings(relative=0.5)
    with pytest.raises(ValueError, match="headroom_ratio"):
        ShiftSettings(headroom_ratio=0.0)


def test_a_slowdown_that_reaches_every_replica_undoes_an_early_shift():
    settings = ShiftSettings(ema_alpha=1.0, threshold_s=0.2)
    first = [{"a": 0.8, "b": FAST, "c": FAST}]  # a is seen slow first
    everyone = [{"a": 0.8, "b": 0.7, "c": 0.9}] * 3
    results = run(first + everyone, settings)
    assert [r.weights["a"] for r in results] == [12, 16, 16, 16]
    (undo,) = [e for e in results[1].events if e.action is ShiftAction.RESTORE]
    assert undo.replica == "a" and undo.reason == "every other replica is degraded too"
