"""The tuner's metrics: prometheus_client types in their own registry, the catalog's names."""

from __future__ import annotations

import threading

from prometheus_client import generate_latest

from tests.unit.tuner_doubles import make_loop as make
from tuneloop.catalog.tuner import SPECS
from tuner.metrics import TunerMetrics


def test_exposition_has_the_catalog_names_and_no_created_series():
    m = TunerMetrics()
    m.trial("e", "done", 10.0)
    m.trial("e", "done", 5.0)  # the last-trial gauge never goes back in time
    m.rollback("e", "breach")
    m.set_best("e", 1.5)
    m.set_knobs("e", {"a": 3, "mode": "x"})
    text = generate_latest(m.registry()).decode()
    names = {line.split("{")[0] for line in text.splitlines() if line and line[0] != "#"}
    assert names == {spec.name for spec in SPECS}
    assert 'tuneloop_tuner_trials_total{experiment="e",outcome="done"} 2.0' in text
    assert 'tuneloop_tuner_rollbacks_total{experiment="e",reason="breach"} 1.0' in text
    assert 'tuneloop_tuner_last_trial_timestamp_seconds{experiment="e"} 10.0' in text
    assert 'knob="mode"' not in text  # only numeric knobs are exported


def test_counts_from_many_threads_are_not_lost():
    m = TunerMetrics()

    def work():
        for _ in range(500):
            m.trial("e", "done")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert m.value("tuneloop_tuner_trials_total", experiment="e", outcome="done") == 2000


def test_load_starts_counters_from_the_store(tmp_path):
    loop, _, _, store, _, _ = make(tmp_path, start=(40, 60))
    loop.run(max_trials=4)
    fresh = TunerMetrics()
    fresh.load(store, "weights")
    for outcome in ("done", "infeasible", "invalid", "rolled_back"):
        labels = {"experiment": "weights", "outcome": outcome}
        name = "tuneloop_tuner_trials_total"
        assert fresh.value(name, **labels) == loop.metrics.value(name, **labels)
    inc = store.incumbent("weights")
    assert inc is not None
    assert fresh.value("tuneloop_tuner_best_objective", experiment="weights") == inc[1]
