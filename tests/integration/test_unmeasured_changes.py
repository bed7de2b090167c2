"""Nothing unmeasured stays applied, on real HAProxy and a real (broken, then stopped) Prometheus.

The tuner changes HAProxy server weights through its runtime API; its objective comes from a
Prometheus whose query has a syntax error, or from a Prometheus that has been stopped. Every
trial must be rolled back at once, the run must stop after three signal failures with a non-zero
exit, and HAProxy's ``show servers state`` must then hold exactly the weights of the store's
initial snapshot (there is no incumbent: nothing was ever measured).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

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
  window: 1s
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


def run_tuner(tmp_path: Path, url: str, admin: str, objective: str) -> tuple[int, Path]:
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT.format(url=url, admin=admin, objective=objective))
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


@pytest.mark.timeout(120)
def test_promql_syntax_error_leaves_no_unmeasured_configuration(tmp_path, capsys):
    with (
        haproxy.running_haproxy(tmp_path / "haproxy", {"llm": INITIAL}) as lb,
        prometheus.running_prometheus(tmp_path / "prom", ["127.0.0.1:9"]) as prom,
    ):
        code, state = run_tuner(tmp_path, prom.url, lb.admin_address, BROKEN_OBJECTIVE)
        assert code == EXIT_SIGNALS_FAILED
        assert "signals failing" in capsys.readouterr().err
        check_left_on_initial_snapshot(state, lb.admin_address)


@pytest.mark.timeout(120)
def test_stopped_prometheus_leaves_no_unmeasured_configuration(tmp_path, capsys):
    with haproxy.running_haproxy(tmp_path / "haproxy", {"llm": INITIAL}) as lb:
        with prometheus.running_prometheus(tmp_path / "prom", ["127.0.0.1:9"]) as prom:
            url = prom.url
        # Prometheus is stopped now; its port answers nothing.
        code, state = run_tuner(tmp_path, url, lb.admin_address, GOOD_OBJECTIVE)
        assert code == EXIT_SIGNALS_FAILED
        assert "signals failing" in capsys.readouterr().err
        check_left_on_initial_snapshot(state, lb.admin_address)
