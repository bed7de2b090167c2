"""Nothing unmeasured stays applied, on real HAProxy and a real (broken, empty, stopped) Prometheus.

The tuner changes HAProxy server weights through its runtime API. An objective with a syntax
error, or a Prometheus that does not answer, is refused by the preflight: exit 1, no trial, the
weights untouched. An objective that answers with no data, or a Prometheus stopped in the middle
of a trial, gets past the preflight: then every trial must be rolled back at once, the run must
stop after three signal failures (exit 4), and HAProxy's ``show servers state`` must hold exactly
the weights of the store's initial snapshot (there is no incumbent: nothing was ever measured).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from lab.processes import wait_until
from tests.realprocs import haproxy, prometheus
from tuner.cli import EXIT_SIGNALS_FAILED, main
from tuner.store import TrialStore
from tuner.trial_state import TrialKind, TrialState
from tuner.wiring import Factories

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (haproxy.available() and prometheus.available()), reason="haproxy and prometheus"
    ),
]

INITIAL = {"r0": 10, "r1": 30}
GOOD_OBJECTIVE = "sum(vector(1))"
BROKEN_OBJECTIVE = "sum(rate(up[$window])"  # a missing parenthesis: Prometheus answers 400
NO_DATA_OBJECTIVE = "sum(rate(tuneloop_never_exported_total[$window]))"

EXPERIMENT = """
name: weights
mode: apply
signals: {{prometheus: "{url}", timeout: 2s, retries: 0}}
appliers:
  lb: {{kind: haproxy, address: "{admin}"}}
knobs:
  - {{name: w0, type: int, applier: lb, target: llm/r0, class: hot, bounds: [1, 100]}}
  - {{name: w1, type: int, applier: lb, target: llm/r1, class: hot, bounds: [1, 100]}}
objective: {{query: '{objective}', direction: maximize}}
measurement:
  warmup: {{hot: 0s}}
  window: {window}
  check_interval: 1s
  rate: {{query: 'vector(5)'}}
budget: {{trials: 8}}
safety: {{max_relative_step: 1.0, cooldown: 0s}}
strategy: {{name: random, seed: 5}}
"""


def show_servers_state(address: str, backend: str) -> dict[str, int]:
    """Server -> user weight, from the runtime API's ``show servers state``."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(f"show servers state {backend}\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = next(line for line in lines if line.startswith("# be_id"))[2:].split()
    out = {}
    for line in lines:
        fields = line.split()
        if not line.startswith("#") and len(fields) == len(header):
            row = dict(zip(header, fields, strict=True))
            out[row["srv_name"]] = int(row["srv_uweight"])
    return out


def run_tuner(
    tmp_path: Path, url: str, admin: str, objective: str, window: str = "1s"
) -> tuple[int, Path]:
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT.format(url=url, admin=admin, objective=objective, window=window))
    state = tmp_path / "state"
    return main(["tune", str(exp), "--apply", "--state", str(state)], Factories()), state


def check_left_on_initial_snapshot(state: Path, admin: str) -> None:
    store = TrialStore(state / "trials.db")
    try:
        trials = store.trials("weights")
        strategy = [t for t in trials if t.kind == TrialKind.TRIAL]
        assert len(strategy) == 3, [t.reason for t in trials]
        for t in strategy:
            assert t.state == TrialState.INVALID and t.rolled_back and t.applied
            assert t.measurements["rollback_reason"] == "signal_failure"
            assert t.params != {"w0": INITIAL["r0"], "w1": INITIAL["r1"]} or t.number == 1
        assert all(t.final for t in trials)
        assert store.incumbent("weights") is None
        initial = store.snapshots("weights", "initial")["lb"]
    finally:
        store.close()
    in_place = show_servers_state(admin, "llm")
    assert in_place == INITIAL
    assert {f"llm/{s}": w for s, w in in_place.items()} == {k: int(v) for k, v in initial.items()}


def check_nothing_changed(state: Path, admin: str) -> None:
    store = TrialStore(state / "trials.db")
    try:
        assert store.trials("weights") == []
    finally:
        store.close()
    assert show_servers_state(admin, "llm") == INITIAL


@pytest.mark.timeout(120)
def test_promql_syntax_error_is_refused_before_any_change(tmp_path, capsys):
    with (
        haproxy.running_haproxy(tmp_path / "haproxy", {"llm": INITIAL}) as lb,
        prometheus.running_prometheus(tmp_path / "prom", ["127.0.0.1:9"]) as prom,
    ):
        code, state = run_tuner(tmp_path, prom.url, lb.admin_address, BROKEN_OBJECTIVE)
        assert code == 1  # an error, said before anything changed
        err = capsys.readouterr().err
        assert "preflight" in err and "nothing was changed" in err and "parse error" in err
        check_nothing_changed(state, lb.admin_address)


@pytest.mark.timeout(120)
def test_unreachable_prometheus_is_refused_before_any_change(tmp_path, capsys):
    with haproxy.running_haproxy(tmp_path / "haproxy", {"llm": INITIAL}) as lb:
        with prometheus.running_prometheus(tmp_path / "prom", ["127.0.0.1:9"]) as prom:
            url = prom.url
        # Prometheus is stopped now; its port answers nothing.
        code, state = run_tuner(tmp_path, url, lb.admin_address, GOOD_OBJECTIVE)
        assert code == 1  # an error, said before anything changed
        assert "Connection refused" in capsys.readouterr().err
        check_nothing_changed(state, lb.admin_address)


@pytest.mark.timeout(120)
def test_an_objective_without_data_leaves_no_unmeasured_configuration(tmp_path, capsys):
    # No data passes preflight (there may be no traffic yet); no trial can be measured.
    with (
        haproxy.running_haproxy(tmp_path / "haproxy", {"llm": INITIAL}) as lb,
        prometheus.running_prometheus(tmp_path / "prom", ["127.0.0.1:9"]) as prom,
    ):
        code, state = run_tuner(tmp_path, prom.url, lb.admin_address, NO_DATA_OBJECTIVE)
        assert code == EXIT_SIGNALS_FAILED
        assert "signals failing" in capsys.readouterr().err
        check_left_on_initial_snapshot(state, lb.admin_address)


@pytest.mark.timeout(180)
def test_prometheus_stopping_mid_trial_leaves_no_unmeasured_configuration(tmp_path, capsys):
    with (
        haproxy.running_haproxy(tmp_path / "haproxy", {"llm": INITIAL}) as lb,
        prometheus.running_prometheus(tmp_path / "prom", ["127.0.0.1:9"]) as prom,
    ):
        outcome: list[tuple[int, Path]] = []
        tuner = threading.Thread(
            target=lambda: outcome.append(
                run_tuner(tmp_path, prom.url, lb.admin_address, GOOD_OBJECTIVE, window="15s")
            )
        )
        tuner.start()
        audit = tmp_path / "state" / "audit.jsonl"
        wait_until(lambda: audit.exists() and '"apply"' in audit.read_text(), 60, "the first apply")
        prom.proc.terminate()  # within the first trial's 15 s window
        prom.proc.wait(timeout=30)
        tuner.join(timeout=150)
        assert not tuner.is_alive()
        ((code, state),) = outcome
        assert code == EXIT_SIGNALS_FAILED
        assert "signals failing" in capsys.readouterr().err
        check_left_on_initial_snapshot(state, lb.admin_address)
