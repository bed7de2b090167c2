"""Measurement: warm-up per class, window checks, validity, repeats."""

from __future__ import annotations

from tests.unit.tuner_doubles import FakeClock
from tuner.appliers.base import KnobClass
from tuner.measure import Measurer
from tuner.progress import MeasureTick
from tuner.signals.base import SignalError, SignalRef, Signals
from tuner.spec import Constraint, Measurement, Objective

P99 = SignalRef(signal="p99_ttft_seconds")
SLO = Constraint("p99", P99, max=0.5)
SPEC = Measurement(warmup_s={KnobClass.HOT: 5, KnobClass.WARM: 60, KnobClass.COLD: 300},
                   window_s=60, repeats=2, min_request_rate=1.0, check_interval_s=15)  # fmt: skip


class Scripted(Signals):
    """Answers from per-signal functions of the (fake) time since start."""

    def __init__(self, clock, **fns):
        self.clock, self.start, self.fns = clock, clock.now(), fns
        self.asked: list[tuple[str, float, float]] = []

    def value(self, ref, window_s):
        name = ref.signal
        self.asked.append((name, window_s, self.clock.now() - self.start))
        fn = self.fns.get(name)
        if isinstance(fn, Exception):
            raise fn
        return fn(self.clock.now() - self.start) if callable(fn) else fn


def measurer(clock, **fns):
    fns.setdefault("request_rate", 10.0)
    fns.setdefault("p99_ttft_seconds", 0.3)
    fns.setdefault("throughput_tokens_per_second", 100.0)
    sig = Scripted(clock, **fns)
    obj = Objective(SignalRef(signal="throughput_tokens_per_second"), "maximize")
    return Measurer(sig, clock, SPEC, obj, [SLO]), sig


def test_valid_measurement_waits_warmup_and_averages_repeats():
    clock = FakeClock()
    m, sig = measurer(clock, throughput_tokens_per_second=lambda t: t)
    res = m.measure(KnobClass.COLD)
    assert res.valid and res.feasible and res.outcome == "done"
    assert clock.now() - 1_700_000_000.0 == 300 + 2 * 60
    assert res.objective == (360 + 420) / 2
    checks = [a for a in sig.asked if a[0] == "p99_ttft_seconds" and a[1] == 15]
    assert len(checks) == 2 * 3  # every 15 s inside each 60 s window, not during warm-up
    assert all(t >= 300 for _, _, t in checks)


def test_breach_aborts_early_and_is_infeasible():
    clock = FakeClock()
    m, _ = measurer(clock, p99_ttft_seconds=lambda t: 0.9 if t > 20 else 0.3)
    res = m.measure(KnobClass.HOT)
    assert res.valid and not res.feasible and res.aborted
    assert "p99 = 0.9 (must be <= 0.5)" in res.reason
    assert clock.now() - 1_700_000_000.0 == 5 + 30  # stopped at the second check


def test_breach_at_end_of_window_is_infeasible():
    clock = FakeClock()
    m, _ = measurer(clock, p99_ttft_seconds=lambda t: 0.7 if t >= 65 else 0.2)
    res = m.measure(KnobClass.HOT)
    assert res.outcome == "infeasible" and not res.aborted
    assert clock.now() - 1_700_000_000.0 == 65  # the second repeat is skipped


def test_no_data_and_low_rate_and_errors_are_invalid():
    cases: list[tuple[dict[str, float | SignalError | None], str, bool]] = [
        ({"throughput_tokens_per_second": None}, "no data", True),
        ({"request_rate": 0.2}, "request rate 0.2/s below the minimum 1/s", False),
        ({"request_rate": None}, "request rate no data", True),
        ({"p99_ttft_seconds": None}, "SLO p99 unreadable during window (no data)", True),
        ({"throughput_tokens_per_second": SignalError("timeout")}, "failed: timeout", True),
    ]
    for fns, text, signal_failure in cases:
        m, _ = measurer(FakeClock(), **fns)
        res = m.measure(None)
        assert not res.valid and res.outcome == "invalid" and res.objective is None
        assert text in res.reason, (fns, res.reason)
        assert res.signal_failure is signal_failure, fns


def test_constraint_with_no_data_at_the_end_of_the_window_is_a_signal_failure():
    clock = FakeClock()
    m, _ = measurer(clock, p99_ttft_seconds=lambda t: None if t >= 60 else 0.3)
    res = m.measure(None)
    assert res.outcome == "invalid" and res.signal_failure and not res.aborted
    assert "constraint p99: no data" in res.reason


def test_unreadable_constraint_during_the_window_aborts_at_once():
    clock = FakeClock()
    calls = iter([0.3, SignalError("blip")] + [0.3] * 10)

    def p99(_t):
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    m, _ = measurer(clock, p99_ttft_seconds=p99)
    res = m.measure(KnobClass.HOT)
    assert res.outcome == "invalid" and res.aborted and res.signal_failure
    assert "SLO p99 unreadable during window" in res.reason and "blip" in res.reason
    assert clock.now() - 1_700_000_000.0 == 5 + 30  # stopped at the second check


def test_ticks_report_time_left_and_readings():
    clock = FakeClock()
    m, _ = measurer(clock)
    ticks: list[MeasureTick] = []
    m.on_tick = ticks.append
    assert m.measure(KnobClass.HOT).valid
    assert ticks[0].phase == "warm-up" and ticks[0].left_s == 0
    window = [t for t in ticks if t.phase == "window"]
    assert [t.left_s for t in window[:4]] == [45, 30, 15, 0]
    assert window[1].readings == {"p99": 0.3} and "45s left" in window[0].describe()
