"""Guardrails: bounds, step limit, trust region, cooldown and freeze windows (freezegun)."""

from __future__ import annotations

from datetime import UTC, datetime

from freezegun import freeze_time as _freeze_time

from tuneloop.clock import RealClock
from tuner.freeze import parse_freeze_window
from tuner.guard import Guard
from tuner.spec import Safety, loads_experiment

TEXT = """
name: g
appliers: {lb: {kind: x}}
knobs:
  - {name: w, type: int, applier: lb, target: a, class: hot, bounds: [1, 100]}
  - {name: buf, type: real, applier: lb, target: b, class: cold, bounds: [1000, 1000000], log: true}
  - {name: cc, type: categorical, applier: lb, target: c, class: cold, values: [cubic, bbr]}
objective: {signal: p99_ttft_seconds}
"""
KNOBS = loads_experiment(TEXT).knobs


def freeze_time(when: str):
    """freezegun without scanning the kubernetes client's lazily imported models."""
    return _freeze_time(when, ignore=["kubernetes.client"])


def test_bounds_clip_and_round():
    guard = Guard(Safety(max_relative_step=None), KNOBS)
    out, notes = guard.constrain({"w": 250.4, "buf": 10.0, "cc": "bbr"}, None)
    assert out == {"w": 100, "buf": 1000.0, "cc": "bbr"}
    assert any(n.startswith("w:") for n in notes) and any(n.startswith("buf:") for n in notes)


def test_max_relative_step_from_incumbent():
    guard = Guard(Safety(max_relative_step=0.25), KNOBS)
    out, _ = guard.constrain({"w": 90, "buf": 1000.0, "cc": "cubic"}, {"w": 40, "buf": 8000.0})
    assert out["w"] == 50 and out["buf"] == 6000.0 and out["cc"] == "cubic"
    # an integer may always move by one
    out, _ = guard.constrain({"w": 9, "buf": 8000.0, "cc": "cubic"}, {"w": 2, "buf": 8000.0})
    assert out["w"] == 3


def test_trust_region_in_log_space():
    guard = Guard(Safety(max_relative_step=None, trust_region=0.1), KNOBS)
    out, _ = guard.constrain({"w": 100, "buf": 1e6, "cc": "cubic"}, {"w": 50, "buf": 1e4})
    assert out["w"] == 60  # 10% of the 1..100 range
    buf = out["buf"]
    assert isinstance(buf, float)
    assert abs(buf - 1e4 * 10 ** (0.1 * 3)) < 1e-6  # 10% of three decades


def test_cooldown_with_wall_clock():
    guard = Guard(Safety(cooldown_s=300), KNOBS)
    clock = RealClock()
    with freeze_time("2025-03-03 12:00:00") as frozen:
        last = clock.now()
        assert guard.cooldown_remaining(clock.now(), last) == 300
        frozen.tick(120)
        assert guard.cooldown_remaining(clock.now(), last) == 180
        frozen.tick(181)
        assert guard.cooldown_remaining(clock.now(), last) == 0
        assert guard.cooldown_remaining(clock.now(), None) == 0


def test_weekly_window_across_midnight():
    window = parse_freeze_window({"days": ["fri"], "start": "22:00", "end": "06:00"}, "w")
    assert window.contains(datetime(2025, 3, 7, 23, 0, tzinfo=UTC))  # Friday night
    assert window.contains(datetime(2025, 3, 8, 5, 59, tzinfo=UTC))  # Saturday early
    assert not window.contains(datetime(2025, 3, 8, 6, 0, tzinfo=UTC))
    assert not window.contains(datetime(2025, 3, 7, 21, 59, tzinfo=UTC))
    assert not window.contains(datetime(2025, 3, 6, 23, 0, tzinfo=UTC))  # Thursday


def test_freeze_windows_block_and_wait_with_frozen_time():
    weekend = {"days": ["sat", "sun"], "start": "00:00", "end": "24:00"}
    holiday = {"start": "2025-03-12T00:00:00Z", "end": "2025-03-13T00:00:00Z"}
    safety = Safety(cooldown_s=60, freeze_windows=(parse_freeze_window(weekend, "a"),
                                                   parse_freeze_window(holiday, "b")))  # fmt: skip
    guard = Guard(safety, KNOBS)
    clock = RealClock()
    with freeze_time("2025-03-08 10:30:00"):  # a Saturday
        assert guard.frozen(clock.now()) is not None
        wait = guard.wait_s(clock.now(), None)
        assert wait == (13 * 60 + 30) * 60 + 24 * 3600  # until Monday 00:00
    with freeze_time("2025-03-10 09:00:00") as frozen:  # Monday
        assert guard.frozen(clock.now()) is None
        last = clock.now()
        frozen.tick(10)
        assert guard.wait_s(clock.now(), last) == 50
    with freeze_time("2025-03-12 18:00:00"):  # inside the absolute window
        assert guard.wait_s(clock.now(), None) == 6 * 3600


def test_an_unset_current_value_leaves_only_the_bounds():
    guard = Guard(Safety(max_relative_step=0.25), KNOBS)
    out, _ = guard.constrain({"w": 90, "buf": 5e5, "cc": "bbr"}, {"w": "", "buf": None, "cc": ""})
    assert out == {"w": 90, "buf": 5e5, "cc": "bbr"}  # no reference point: bounds only
