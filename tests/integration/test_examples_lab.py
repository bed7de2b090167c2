"""The balancer-weight examples tuned on the lab's server-side signals.

The lab's agent scrapes each sim replica's vLLM ``/metrics`` and exports them normalised; the
lab's Prometheus scrapes the agent and HAProxy's exporter. These tests run the lab examples
through the tuning loop with the fleet source, scoped to the lab's model, and read HAProxy's own
view through the haproxy source. Load is bounded (rate, duration, request count); trials are few
and windows short.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lab import programs
from lab.lab import Lab, LabConfig, running_lab
from tests.example_files import EXAMPLES, load_example
from tuneloop.clock import RealClock
from tuner.appliers.haproxy import HaproxyApplier
from tuner.audit import AuditLog
from tuner.loop import LoopResult, TuningLoop
from tuner.signals.base import SignalRef
from tuner.signals.prometheus import PrometheusSignals
from tuner.signals.settings import Scope, SignalSettings
from tuner.store import TrialStore
from tuner.wiring import registry_appliers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not all(
            programs.available(b)
            for b in (programs.HAPROXY_BINARY, programs.NGINX_BINARY, programs.PROMETHEUS_BINARY)
        ),
        reason="haproxy, nginx and prometheus are needed",
    ),
]

MODEL = "sim-llama-3-8b"
TARGETS = ("llm/r0", "llm/r1", "llm/r2")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = LabConfig(tmp_path_factory.mktemp("lab"), die_with_parent=True, agent=True)
    with running_lab(config) as running:
        yield running


def start_load(lab: Lab, port_name: str, seconds: int = 90) -> None:
    target = f"127.0.0.1:{lab.port(port_name)}"
    bounds = ["--duration", str(seconds), "--max-requests", "1500", "--timeout", "5"]
    lab.start_load(["--target", target, "--rate", "10", *bounds, "--seed", "11"])


def scoped_short(data: dict[str, Any]) -> None:
    """The fleet source scoped to the lab's model; short windows and a small budget. A check
    interval of 4 s holds four 1 s scrapes, so a rate over it has data on a loaded machine."""
    data["signals"]["scope"] = {"model": MODEL}
    data["measurement"].update(
        {"warmup": {"hot": "1s"}, "window": "8s", "check_interval": "4s", "min_request_rate": 1}
    )
    data["budget"] = {"trials": 3, "wall_time": "3m"}


def tune(lab: Lab, template: str, tmp: Path) -> tuple[LoopResult, TrialStore]:
    rendered = lab.render_experiment(EXAMPLES / template, tmp / f"rendered-{template}")
    exp, settings = load_example(rendered, tmp, scoped_short)
    assert settings.source == "fleet" and settings.scope.model == MODEL
    clock = RealClock()
    signals = PrometheusSignals.from_settings(settings, clock)
    # Traffic first: the load has just started, and a trial measured before the agent's first
    # scrape of it reaches Prometheus would be invalid (no data), and rolled back as such.
    for c in exp.constraints:
        assert wait_value(signals, c.ref, exp.measurement.check_interval_s) is not None, c.name
    store = TrialStore(tmp / "trials.db", clock)
    loop = TuningLoop(
        exp,
        registry_appliers(exp),
        signals,
        store,
        clock=clock,
        audit=AuditLog(tmp / "audit.jsonl", None, clock),
    )
    return loop.run(apply=True), store


def wait_value(signals: PrometheusSignals, ref: SignalRef, window_s: float) -> float | None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        value = signals.value(ref, window_s)
        if value is not None:
            return value
        time.sleep(1)
    return None


def test_haproxy_example_tunes_on_the_agents_server_side_latency(lab: Lab, tmp_path: Path):
    admin = HaproxyApplier(f"127.0.0.1:{lab.port('haproxy_admin')}")
    admin.apply(dict.fromkeys(TARGETS, 16))
    start_load(lab, "haproxy")
    fleet = PrometheusSignals(
        lab.url("prometheus"), settings=SignalSettings(scope=Scope(model=MODEL))
    )
    assert wait_value(fleet, SignalRef(signal="request_rate"), 5) is not None
    result, store = tune(lab, "lab-haproxy-weights.yaml", tmp_path)
    try:
        trials = store.trials("lab-haproxy-weights")
    finally:
        store.close()
    done = [t for t in trials if t.state == "done"]
    assert done, [(t.state, t.reason) for t in trials]
    assert all(t.objective is not None and t.objective > 0 for t in done)
    assert result.best is not None
    applied = admin.read(list(TARGETS))
    assert applied == {f"llm/r{i}": int(result.best.params[f"weight_r{i}"]) for i in range(3)}
    # a model nobody serves has no traffic: no data, never a zero latency
    nobody = PrometheusSignals(
        lab.url("prometheus"), settings=SignalSettings(scope=Scope(model="no-such-model"))
    )
    assert nobody.value(SignalRef(signal="p99_e2e_latency_seconds"), 5) is None


def test_haproxy_source_reads_the_balancers_view_of_one_backend(lab: Lab):
    start_load(lab, "haproxy", seconds=30)
    url = lab.url("prometheus")
    llm = PrometheusSignals(
        url, settings=SignalSettings(source="haproxy", scope=Scope(backend="llm"))
    )
    idle = PrometheusSignals(
        url, settings=SignalSettings(source="haproxy", scope=Scope(backend="llm_leastconn"))
    )
    rate = wait_value(llm, SignalRef(signal="request_rate"), 5)
    assert rate is not None and rate > 1
    mean = wait_value(llm, SignalRef(signal="mean_e2e_latency_seconds"), 5)
    assert mean is not None and 0 < mean < 30
    assert llm.value(SignalRef(signal="queue_depth"), 5) is not None
    # the other frontend's backend gets no traffic: its mean time is no data, not 0 s
    assert idle.value(SignalRef(signal="mean_e2e_latency_seconds"), 5) is None


def test_nginx_example_tunes_on_the_agents_server_side_latency(lab: Lab, tmp_path: Path):
    start_load(lab, "nginx")
    result, store = tune(lab, "lab-nginx-weights.yaml", tmp_path)
    try:
        trials = store.trials("lab-nginx-weights")
    finally:
        store.close()
    assert [t for t in trials if t.state == "done"], [(t.state, t.reason) for t in trials]
    assert result.best is not None
    text = (lab.dir / "nginx" / "upstream.conf").read_text()
    for i in range(3):
        assert f"weight={result.best.params[f'weight_r{i}']};  # r{i}" in text
