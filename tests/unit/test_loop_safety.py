"""Nothing unmeasured stays applied: signal failures, unreadable SLOs, a failed final apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.tuner_doubles import incumbent
from tests.unit.tuner_doubles import make_loop as make
from tuner.appliers.base import ApplierError
from tuner.audit import AuditLog
from tuner.loop import STOP_SIGNALS
from tuner.signals.base import SignalError
from tuner.trial_state import TrialKind, TrialState

START = {"be/a": 50, "be/b": 50}


def raising(_state):
    raise SignalError("connection refused")


def audit(tmp_path: Path) -> list[dict]:
    return AuditLog(tmp_path / "audit.jsonl").entries()


@pytest.mark.parametrize("failure", [raising, None], ids=["error", "no-data"])
def test_failing_objective_rolls_back_every_trial_and_stops_after_three(tmp_path, failure):
    loop, applier, signals, store, _, lines = make(tmp_path)
    signals.overrides.update(p50_ttft_seconds=failure, p99_ttft_seconds=0.2)  # no breaches
    result = loop.run()
    trials = [t for t in store.trials("weights") if t.kind == TrialKind.TRIAL]
    assert len(trials) == 3  # stopped at the limit, not the budget of 8
    assert all(t.state == TrialState.INVALID and t.rolled_back for t in trials)
    assert all(t.measurements["rollback_reason"] == "signal_failure" for t in trials)
    assert result.signals_failed and result.stopped.startswith(STOP_SIGNALS)
    assert result.best is None and store.incumbent("weights") is None
    assert applier.state == START  # the initial snapshot, never an unmeasured configuration
    value = loop.metrics.value(
        "tuneloop_tuner_rollbacks_total", experiment="weights", reason="signal_failure"
    )
    assert value == 3
    assert any(e["action"] == "stop" for e in audit(tmp_path))
    assert "initial configuration left as measured" in lines[-1]


def test_signal_failures_after_an_incumbent_return_to_the_incumbent(tmp_path):
    loop, applier, signals, store, _, _ = make(tmp_path)
    loop.run(max_trials=2)
    inc, _ = incumbent(store)
    signals.overrides.update(request_rate=raising, p99_ttft_seconds=0.2)
    result = loop.run(max_trials=10)
    assert result.signals_failed
    assert applier.state == {"be/a": inc.params["a"], "be/b": inc.params["b"]}
    failed = [t for t in store.trials("weights") if t.state == TrialState.INVALID]
    assert len(failed) == 3 and all(t.rolled_back for t in failed)


def test_one_good_measurement_resets_the_failure_count(tmp_path):
    loop, _, signals, store, _, _ = make(tmp_path)
    answers = iter([None, None, 0.3] * 3)  # never three failures in a row; then all good
    signals.overrides.update(p50_ttft_seconds=lambda s: next(answers, 0.3), p99_ttft_seconds=0.2)
    result = loop.run(max_trials=9)
    assert not result.signals_failed and result.applied_best is not None
    assert len([t for t in store.trials("weights") if t.kind == TrialKind.TRIAL]) == 9


def test_unreadable_slo_during_the_window_is_rolled_back_at_once(tmp_path):
    loop, applier, signals, _, clock, _ = make(tmp_path)
    loop.run(max_trials=1)  # (50, 50) becomes the incumbent
    signals.overrides["p99_ttft_seconds"] = lambda s: None if s["be/a"] != 50 else 0.2
    start = clock.now()
    t, res = loop.run_trial({"a": 60, "b": 50})
    assert res is not None and res.aborted and res.signal_failure
    assert t.state == TrialState.INVALID and t.rolled_back
    assert "SLO p99 unreadable" in (t.reason or "")
    assert clock.now() - start < 5 + 30  # the first in-window check ended it
    assert applier.state == START


def test_error_while_measuring_rolls_back_and_raises(tmp_path):
    loop, applier, signals, store, _, _ = make(tmp_path)

    def broken(_state):
        raise RuntimeError("bug in a signal backend")

    signals.overrides["p99_ttft_seconds"] = broken
    with pytest.raises(RuntimeError):
        loop.run_trial({"a": 60, "b": 40})
    (t,) = store.trials("weights")
    assert t.state == TrialState.ROLLED_BACK and t.measurements["rollback_reason"] == "error"
    assert applier.state == START


def test_failed_final_apply_is_restored_audited_and_counted(tmp_path):
    loop, applier, _, store, _, _ = make(tmp_path, start=(40, 60))
    real_finish = loop._apply_best
    before_final: dict = {}

    def fail_final(best, value):
        before_final.update(applier.state)
        wanted = {"be/a": best.params["a"], "be/b": best.params["b"]}
        applier.fail_on = lambda desired: dict(desired) == wanted
        real_finish(best, value)

    loop._apply_best = fail_final  # type: ignore[method-assign]
    with pytest.raises(ApplierError):
        loop.run(max_trials=3)
    final = [t for t in store.trials("weights") if t.kind == TrialKind.FINAL]
    assert len(final) == 1 and final[0].state == TrialState.ROLLED_BACK
    assert before_final and applier.state == before_final
    rollbacks = [e for e in audit(tmp_path) if e["action"] == "rollback"]
    assert rollbacks and rollbacks[-1]["trial"] == final[0].number
    value = loop.metrics.value(
        "tuneloop_tuner_rollbacks_total", experiment="weights", reason="apply_failed"
    )
    assert value == 1
