"""The trial store: durable rows, checked state machine, snapshots (the initial one written once)
and incumbents."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from tests.unit.tuner_doubles import FakeClock
from tuner.store import FINAL, IN_FLIGHT, StoreError, TrialStore
from tuner.trial_state import FINAL_STATES, IN_FLIGHT_STATES


def test_pragmas_make_commits_durable(tmp_path):
    store = TrialStore(tmp_path / "t.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_trial_lifecycle_persists_across_reopen(tmp_path):
    clock = FakeClock()
    store = TrialStore(tmp_path / "t.db", clock)
    store.ensure_experiment("e", "name: e")
    t = store.propose("e", {"a": 1}, {"lb": {"x": 0}})
    assert (t.number, t.state, t.snapshot) == (1, "proposed", {"lb": {"x": 0}})
    clock.sleep(1)
    store.transition(t.id, "applying")
    store.transition(t.id, "applied")
    store.transition(t.id, "measuring")
    store.transition(t.id, "done", objective=0.3, loss=0.3, valid=True, feasible=True,
                     measurements={"rate": 5.0})  # fmt: skip
    store.set_incumbent("e", t.id, 0.3)
    store.close()
    again = TrialStore(tmp_path / "t.db")
    got = again.get(t.id)
    assert got.state == "done" and got.applied and got.valid and got.objective == 0.3
    assert got.measurements == {"rate": 5.0} and got.applied_at == clock.now()
    incumbent = again.incumbent("e")
    assert incumbent is not None and incumbent[0].id == t.id
    assert again.propose("e", {"a": 2}, {}).number == 2
    assert [x.number for x in again.in_flight("e")] == [2]


@pytest.mark.parametrize(("path", "bad"), [([], "done"), (["applying"], "measuring"),
                                           (["applying", "rolled_back"], "applying")])  # fmt: skip
def test_illegal_transitions_are_refused(tmp_path, path, bad):
    store = TrialStore(tmp_path / "t.db")
    t = store.propose("e", {}, {})
    for state in path:
        store.transition(t.id, state)
    with pytest.raises(StoreError, match=f"cannot go from .* to {bad}"):
        store.transition(t.id, bad)


def test_first_snapshot_wins(tmp_path):
    store = TrialStore(tmp_path / "t.db")
    assert store.save_snapshot("e", "initial", "lb", {"a": 1})
    assert not store.save_snapshot("e", "initial", "lb", {"a": 2})
    assert store.snapshots("e", "initial") == {"lb": {"a": 1}}


def test_unknown_experiment_and_trial(tmp_path):
    store = TrialStore(tmp_path / "t.db")
    with pytest.raises(StoreError, match="no experiment named 'x'"):
        store.experiment_spec("x")
    with pytest.raises(StoreError, match="no trial with id 9"):
        store.get(9)


def test_rows_are_visible_to_another_connection_at_once(tmp_path):
    store = TrialStore(tmp_path / "t.db")
    store.propose("e", {"a": 1}, {})
    other = sqlite3.connect(tmp_path / "t.db")
    assert other.execute("SELECT state FROM trials").fetchall() == [("proposed",)]


def test_audit_log_appends_lines_and_survives_a_failing_sink(tmp_path, caplog):
    from tuner.audit import AuditLog

    seen = []

    def sink(entry):
        seen.append(entry)
        raise RuntimeError("apiserver unreachable")

    log = AuditLog(tmp_path / "a" / "audit.jsonl", sink, FakeClock())
    log.record("apply", "e", trial=1, params={"a": 2})
    with open(tmp_path / "a" / "audit.jsonl", "a") as fh:
        fh.write('{"torn": ')  # a crash mid-line
    log.record("rollback", "e", trial=1, reason="breach")
    entries = log.entries()
    assert [e["action"] for e in entries] == ["apply", "rollback"]  # the torn line is skipped
    assert len(seen) == 2 and "event sink failed" in caplog.text


def test_initial_snapshot_is_written_once_and_a_later_one_is_logged(tmp_path, caplog):
    clock = FakeClock()
    store = TrialStore(tmp_path / "t.db", clock)
    store.ensure_experiment("e", "name: e")
    assert store.initial_snapshot_at("e") is None
    assert store.save_snapshot("e", "initial", "lb", {"be/a": 50})
    taken = clock.now()
    clock.sleep(60)
    with caplog.at_level(logging.INFO, logger="tuner.store"):
        assert not store.save_snapshot("e", "initial", "lb", {"be/a": 90})  # tuned weights
    assert "kept the initial snapshot of 'lb'" in caplog.text
    assert "differs and is not stored" in caplog.text
    assert store.save_snapshot("e", "initial", "k8s", {"replicas": 2})  # a new applier: its first
    store.close()
    again = TrialStore(tmp_path / "t.db", clock)
    assert again.snapshots("e", "initial") == {"lb": {"be/a": 50}, "k8s": {"replicas": 2}}
    assert again.initial_snapshot_at("e") == taken


def test_a_store_that_lost_its_recorded_initial_snapshot_says_so(tmp_path):
    store = TrialStore(tmp_path / "t.db")
    store.ensure_experiment("e", "name: e")
    store.save_snapshot("e", "initial", "lb", {"be/a": 50})
    store._db.execute("DELETE FROM snapshots")
    with pytest.raises(StoreError, match=r"recorded its initial snapshot at .* no longer holds it"):
        store.snapshots("e", "initial")
    assert store.snapshots("e", "other") == {}


def test_unknown_columns_are_refused(tmp_path):
    store = TrialStore(tmp_path / "t.db")
    t = store.propose("e", {}, {})
    with pytest.raises(StoreError, match="cannot set number"):
        store.transition(t.id, "applying", number=7)
    assert store.get(t.id).state == "proposed"


def test_state_aliases_follow_the_trial_state_module():
    assert set(FINAL) == FINAL_STATES and set(IN_FLIGHT) == IN_FLIGHT_STATES
    assert isinstance(IN_FLIGHT, tuple)  # usable as SQL parameters
