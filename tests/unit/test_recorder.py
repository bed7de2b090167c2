"""The recorder keeps the store, the metrics and the audit log in step."""

from __future__ import annotations

from collections import Counter

from tests.unit.tuner_doubles import make_loop as make
from tuner.audit import AuditLog
from tuner.metrics import COUNTED_KINDS, OUTCOMES


def test_store_metrics_and_audit_agree_after_a_mixed_run(tmp_path):
    loop, applier, signals, store, _, lines = make(tmp_path, start=(40, 60))
    answers = iter([0.2, None, 0.3, 0.25, None] * 10)
    signals.overrides["request_rate"] = lambda s: 50.0 if next(answers) else None
    applier.fail_on = lambda desired: desired.get("be/b") == 73  # one apply is refused
    loop.run(max_trials=8)
    trials = store.trials("weights")
    by_outcome = Counter(t.state for t in trials if t.kind in COUNTED_KINDS and t.state in OUTCOMES)
    assert len(by_outcome) >= 3, by_outcome  # done, infeasible/invalid, rolled back: a real mix
    for outcome, n in by_outcome.items():
        labels = {"experiment": "weights", "outcome": outcome}
        assert loop.metrics.value("tuneloop_tuner_trials_total", **labels) == n, outcome
    rolled = Counter(t.measurements["rollback_reason"] for t in trials if t.rolled_back)
    for reason, n in rolled.items():
        labels = {"experiment": "weights", "reason": reason}
        assert loop.metrics.value("tuneloop_tuner_rollbacks_total", **labels) == n, reason
    entries = AuditLog(tmp_path / "audit.jsonl").entries()
    actions = Counter(e["action"] for e in entries)
    assert actions["propose"] == len(trials)
    assert actions["rollback"] == sum(rolled.values())
    finished = [t for t in trials if t.state in OUTCOMES]
    assert actions["result"] == len(finished)
    shown = [line for line in lines if line.startswith("trial ")]
    assert len(shown) == actions["result"]  # one progress line per recorded result
    inc = store.incumbent("weights")
    assert inc is not None
    assert loop.metrics.value("tuneloop_tuner_best_objective", experiment="weights") == inc[1]
