"""The trial loop against in-test appliers and signals on a simulated clock."""

from __future__ import annotations

import itertools

from tests.unit.tuner_doubles import EXPERIMENT, incumbent, measured
from tests.unit.tuner_doubles import make_loop as make
from tuner.audit import AuditLog


def test_runs_to_budget_and_applies_the_best(tmp_path):
    loop, applier, _, store, _, lines = make(tmp_path)
    result = loop.run()
    trials = [t for t in store.trials("weights") if t.kind == "trial"]
    assert len(trials) == 8 and all(t.final for t in trials)
    assert result.best is not None and result.applied_best
    # the best is the measured trial with the lowest objective, and it is what is in place now
    best_measured = min((t for t in store.trials("weights") if t.state == "done"),
                        key=lambda t: measured(t.objective))  # fmt: skip
    assert measured(result.best_value) <= measured(best_measured.objective) + 1e-12
    assert applier.state == {"be/a": result.best.params["a"], "be/b": result.best.params["b"]}
    assert sum(1 for line in lines if line.startswith("trial ")) >= 8
    assert store.trials("weights")[0].params == {"a": 50, "b": 50}  # current config first


def test_new_best_is_promoted_only_after_remeasuring_the_incumbent(tmp_path):
    loop, _, _, store, _, _ = make(tmp_path, start=(40, 60))
    loop.run()
    trials = store.trials("weights")
    promotions = [t for t in trials if t.kind == "incumbent"]
    assert promotions, "a better trial should have triggered an incumbent re-measurement"
    for re in promotions:
        before = [t for t in trials if t.number < re.number and t.kind == "trial"]
        assert before[-1].state == "done"


def test_breach_rolls_back_to_incumbent_at_once(tmp_path):
    loop, applier, signals, _store, clock, _ = make(tmp_path)
    loop.run(max_trials=1)  # baseline (50, 50) becomes the incumbent
    signals.overrides["p99_ttft_seconds"] = lambda s: 9.0 if s["be/a"] != 50 else 0.2
    start = clock.now()
    t, res = loop.run_trial({"a": 60, "b": 50})
    assert t.state == "infeasible" and t.rolled_back and "p99" in (t.reason or "")
    assert res is not None and res.aborted
    assert clock.now() - start < 5 + 30  # aborted before the window ended
    assert applier.state == {"be/a": 50, "be/b": 50}
    assert any(e["action"] == "rollback" for e in AuditLog(tmp_path / "audit.jsonl").entries())


def test_apply_failure_restores_snapshot(tmp_path):
    loop, applier, _, _store, _, _ = make(tmp_path)
    applier.fail_on = lambda desired: desired.get("be/b") == 77
    t, res = loop.run_trial({"a": 60, "b": 77})
    assert t.state == "rolled_back" and res is None and "apply failed" in str(t.reason)
    assert applier.state == {"be/a": 50, "be/b": 50}


def test_verify_failure_rolls_back(tmp_path):
    loop, applier, _, _store, _, _ = make(tmp_path)
    applier.drop = {"be/b"}
    t, _ = loop.run_trial({"a": 60, "b": 40})
    assert t.state == "rolled_back" and "read-back differs" in str(t.reason)
    assert applier.state["be/a"] == 50


def test_no_traffic_is_invalid_and_not_told(tmp_path):
    loop, _, signals, store, _, _ = make(tmp_path)
    signals.overrides.update(request_rate=0.0, p99_ttft_seconds=None, p50_ttft_seconds=None)
    loop.run(max_trials=3)
    trials = [t for t in store.trials("weights") if t.kind == "trial"]
    assert [t.state for t in trials] == ["invalid"] * 3
    assert all(t.objective is None for t in trials)
    assert store.incumbent("weights") is None


def test_resume_rolls_back_in_flight_trial(tmp_path):
    loop, applier, _, store, _, _ = make(tmp_path)
    snap = loop.targets.snapshot()
    t = store.propose("weights", {"a": 90, "b": 10}, snap)
    store.transition(t.id, "applying")
    applier.state["be/a"] = 90  # half applied when the tuner died
    loop2, _, _, _, _, _ = make(tmp_path)
    loop2.targets = loop.targets
    done = loop2.resume()
    assert [d.id for d in done] == [t.id]
    assert store.get(t.id).state == "rolled_back" and "interrupted" in str(store.get(t.id).reason)
    assert applier.state == {"be/a": 50, "be/b": 50}


def finished_unpromoted(store, params, objective):
    """A trial measured feasible by a run that was killed before it promoted it."""
    t = store.propose("weights", params, {})
    for state in ("applying", "applied", "measuring"):
        store.transition(t.id, state)
    return store.transition(t.id, "done", objective=objective, valid=True, feasible=True)


def test_resume_promotes_a_measured_trial_the_killed_run_did_not(tmp_path):
    loop, _, _, store, _, _ = make(tmp_path)
    store.ensure_experiment("weights", loop.exp.source)
    finished_unpromoted(store, {"a": 60, "b": 40}, 0.9)
    best = finished_unpromoted(store, {"a": 70, "b": 30}, 0.4)
    assert store.incumbent("weights") is None
    loop.resume()
    assert incumbent(store) == (store.get(best.id), 0.4)
    later = finished_unpromoted(store, {"a": 71, "b": 29}, 0.1)
    loop.resume()  # with an incumbent, a challenger is judged by re-measurement, not here
    assert incumbent(store)[0].id == best.id != later.id


def test_advisory_mode_changes_nothing(tmp_path):
    text = EXPERIMENT.replace("mode: apply", "mode: advisory")
    loop, applier, _, store, _, lines = make(tmp_path, text)
    result = loop.run()
    assert applier.applies == []
    kinds = [t.kind for t in store.trials("weights")]
    assert kinds == ["baseline", "advice"]
    assert result.recommendation is not None and "advisory" in lines[-1]


def test_wall_time_budget_stops_the_loop(tmp_path):
    text = EXPERIMENT.replace("budget: {trials: 8}", "budget: {trials: 50, wall_time: 2m}")
    loop, _, _, store, _, _ = make(tmp_path, text)
    result = loop.run()
    assert result.stopped.startswith("budget: wall time")
    assert len([t for t in store.trials("weights") if t.kind == "trial"]) < 50


def test_cooldown_is_respected_between_applies(tmp_path):
    text = EXPERIMENT.replace("cooldown: 1s", "cooldown: 10m")
    loop, _applier, _, store, _clock, _ = make(tmp_path, text)
    loop.run(max_trials=3)
    applied = [t.applied_at for t in store.trials("weights") if t.applied_at]
    assert len(applied) >= 3
    assert all(b - a >= 600 - 1e-6 for a, b in itertools.pairwise(applied))
