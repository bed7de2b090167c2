"""Promotion against the live system: incumbent re-measured, noise, challenger re-measured,
and the final choice measured again before it stays."""

from __future__ import annotations

import pytest

from tests.unit.tuner_doubles import incumbent
from tests.unit.tuner_doubles import make_loop as make
from tuner.appliers.base import ApplierError
from tuner.store import Trial
from tuner.trial_state import TrialKind, TrialState


def scripted(loop, signals, incumbent, challenger):
    """p50 answers by configuration: a=50 is the incumbent, a=60 the challenger."""
    inc, ch = iter(incumbent), iter(challenger)
    signals.overrides.update(
        p50_ttft_seconds=lambda s: next(inc) if s["be/a"] == 50 else next(ch),
        p99_ttft_seconds=0.2,
    )
    told: list[Trial] = []
    loop.resume()  # records the experiment, as every run does first
    first, _ = loop.run_trial({"a": 50, "b": 50})
    loop.promoter.consider(first, told.append)
    t, _ = loop.run_trial({"a": 60, "b": 50})
    loop.promoter.consider(t, told.append)
    return t, told


@pytest.mark.parametrize(
    ("second", "promoted"), [(0.7, True), (0.89, False)], ids=["wins", "within-noise"]
)
def test_a_win_within_the_noise_is_measured_again(tmp_path, second, promoted):
    loop, _, signals, store, _, _ = make(tmp_path)
    _, told = scripted(loop, signals, [1.0, 0.9], [0.85, second])
    kinds = [x.kind for x in store.trials("weights")]
    assert kinds == ["trial", "trial", "incumbent", "challenger"]
    assert kinds.count(TrialKind.CHALLENGER) == 1 and len(told) == 2
    inc, value = incumbent(store)
    if promoted:
        assert inc.params == {"a": 60, "b": 50} and value == pytest.approx((0.85 + 0.7) / 2)
    else:
        assert inc.params == {"a": 50, "b": 50} and value == pytest.approx(0.9)


def test_a_clear_win_needs_no_second_window(tmp_path):
    loop, _, signals, store, _, _ = make(tmp_path)
    t, _ = scripted(loop, signals, [1.0, 1.01], [0.5])
    assert TrialKind.CHALLENGER not in [x.kind for x in store.trials("weights")]
    assert incumbent(store)[0].id == t.id


def test_the_final_choice_is_measured_before_it_stays(tmp_path):
    loop, applier, _, store, _, _ = make(tmp_path, start=(40, 60))
    loop.run(max_trials=3)
    applier.state.update({"be/a": 45, "be/b": 55})  # something else is in place now
    result = loop.run(max_trials=3)  # the budget is spent: only the final apply runs
    assert result.applied_best
    final = [t for t in store.trials("weights") if t.kind == TrialKind.FINAL][-1]
    assert final.state == TrialState.DONE and final.objective is not None
    assert result.best_value == final.objective == incumbent(store)[1]
    assert result.best is not None
    assert applier.state == {"be/a": result.best.params["a"], "be/b": result.best.params["b"]}


def test_a_final_choice_that_breaches_goes_back_to_what_was_in_place(tmp_path):
    loop, applier, signals, store, _, _ = make(tmp_path, start=(40, 60))
    loop.run(max_trials=3)
    inc, _ = incumbent(store)
    applier.state.update({"be/a": 45, "be/b": 55})  # something else is in place now
    best = {"be/a": inc.params["a"], "be/b": inc.params["b"]}
    signals.overrides["p99_ttft_seconds"] = lambda s: 9.0 if dict(s) == best else 0.2
    with pytest.raises(ApplierError, match="was not kept"):
        loop.run(max_trials=3)  # the budget is spent: only the final apply runs
    final = [t for t in store.trials("weights") if t.kind == TrialKind.FINAL][-1]
    assert final.state == TrialState.INFEASIBLE and final.rolled_back
    assert applier.state == {"be/a": 45, "be/b": 55}
