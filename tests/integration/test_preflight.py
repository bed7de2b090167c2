"""Preflight and ``tuneloop check`` on a real Prometheus and a real HAProxy, both on loopback."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.realprocs import haproxy as real_haproxy
from tests.realprocs import prometheus as real_prometheus
from tuner.appliers.registry import build_appliers
from tuner.check_cmd import add_check_command
from tuner.preflight import run_preflight
from tuner.signals.prometheus import PrometheusSignals
from tuner.spec import Experiment, loads_experiment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (real_prometheus.available() and real_haproxy.available()),
        reason="prometheus and haproxy are needed",
    ),
]

GOOD = "vector(0.25)"
EMPTY = "sum(tuneloop_no_such_metric)"
BROKEN = "sum(rate(tuneloop_x[5m]"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prometheus")
    with real_prometheus.running_prometheus(workdir, []) as proc:
        yield proc


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory):
    backends = {"llm": {"r0": 10, "r1": 20}}
    with real_haproxy.running_haproxy(tmp_path_factory.mktemp("haproxy"), backends) as proc:
        yield proc


def experiment_text(prom_url: str, lb: str, objective: str, constraint: str, knobs: str) -> str:
    return f"""
name: preflight
signals: {{prometheus: "{prom_url}", timeout: 2s, retries: 0}}
appliers:
  lb: {{kind: haproxy, address: "{lb}", timeout: 2s}}
knobs:
{knobs}
objective: {{query: "{objective}"}}
constraints:
  - {{name: p99, query: "{constraint}", max: 1}}
measurement: {{window: 30s}}
"""


KNOBS = """  - {name: w0, applier: lb, target: llm/r0, type: int, bounds: [1, 256], class: hot}
  - {name: w1, applier: lb, target: llm/r1, type: int, bounds: [1, 15], class: hot}"""


def load(prometheus_url: str, haproxy_address: str, **kwargs: str) -> Experiment:
    parts = {"objective": GOOD, "constraint": EMPTY, "knobs": KNOBS, **kwargs}
    return loads_experiment(experiment_text(prometheus_url, haproxy_address, **parts))


def signals_for(exp: Experiment) -> PrometheusSignals:
    assert exp.signals.prometheus is not None
    return PrometheusSignals(exp.signals.prometheus, timeout_s=2.0, retries=0)


def test_all_signals_answer_and_every_knob_reads(prometheus, haproxy):
    exp = load(prometheus.url, haproxy.admin_address)
    report = run_preflight(exp, build_appliers(exp), signals_for(exp))
    assert report.ok
    by_label = {s.label: s for s in report.signals}
    assert by_label["objective"].value == 0.25
    assert by_label["constraints[0] (p99)"].value is None  # no data: allowed, and shown
    assert by_label["constraints[0] (p99)"].status == "OK (no data)"
    assert by_label["measurement.rate"].ok
    assert [(k.name, k.value) for k in report.knobs] == [("w0", 10), ("w1", 20)]
    assert report.knobs[1].notes == ("current value 20 lies outside bounds [1, 15]",)
    text = report.text()
    assert "OK (no data)" in text and "knob w0 (lb llm/r0) = 10" in text
    assert text.endswith("preflight passed")


def test_syntax_error_fails_with_the_query_and_prometheus_message(prometheus, haproxy):
    exp = load(prometheus.url, haproxy.admin_address, objective=BROKEN)
    report = run_preflight(exp, build_appliers(exp), signals_for(exp))
    assert not report.ok
    objective = report.signals[0]
    assert objective.status == "FAIL"
    assert BROKEN in (objective.error or "")
    assert "parse error" in (objective.error or "")  # Prometheus's own words
    assert all(s.ok for s in report.signals[1:]) and all(k.ok for k in report.knobs)


def test_stopped_prometheus_fails_every_signal(tmp_path, haproxy):
    with real_prometheus.running_prometheus(tmp_path / "gone", []) as proc:
        url = proc.url
    exp = load(url, haproxy.admin_address)
    report = run_preflight(exp, build_appliers(exp), signals_for(exp))
    assert not report.ok
    assert all(s.status == "FAIL" and "did not answer" in (s.error or "") for s in report.signals)
    assert all(k.ok for k in report.knobs)  # the balancer still reads


def test_unknown_server_and_unreachable_balancer_fail_their_knobs(prometheus, haproxy):
    knobs = KNOBS.replace("llm/r1", "llm/r9")
    exp = load(prometheus.url, haproxy.admin_address, knobs=knobs)
    report = run_preflight(exp, build_appliers(exp), signals_for(exp))
    assert [k.ok for k in report.knobs] == [True, False]
    assert "No such server" in report.knobs[1].errors[0]
    closed = load(prometheus.url, "127.0.0.1:1")
    report = run_preflight(closed, build_appliers(closed), signals_for(closed))
    assert not any(k.ok for k in report.knobs) and all(s.ok for s in report.signals)


def run_check(path: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser(prog="tuneloop")
    add_check_command(parser.add_subparsers(required=True))
    args = parser.parse_args(["check", str(path), *extra])
    factories = SimpleNamespace(appliers=build_appliers, signals=signals_for)
    return int(args.func(args, factories))


def test_check_command_exit_codes_and_outputs(prometheus, haproxy, tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(experiment_text(prometheus.url, haproxy.admin_address, GOOD, EMPTY, KNOBS))
    assert run_check(good) == 0
    text = capsys.readouterr().out
    assert "OK           signal objective: 0.25" in text
    assert "OK (no data) signal constraints[0] (p99)" in text

    assert run_check(good, "--output", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True
    assert data["signals"][0]["value"] == 0.25
    assert data["signals"][1]["no_data"] is True
    assert {k["name"]: k["value"] for k in data["knobs"]} == {"w0": 10, "w1": 20}

    bad = tmp_path / "bad.yaml"
    bad.write_text(experiment_text(prometheus.url, haproxy.admin_address, BROKEN, EMPTY, KNOBS))
    assert run_check(bad, "--output", "json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and "parse error" in data["signals"][0]["error"]

    wrong = tmp_path / "wrong.yaml"
    wide = KNOBS.replace("[1, 256]", "[-50, 100000]")
    wrong.write_text(experiment_text(prometheus.url, haproxy.admin_address, GOOD, EMPTY, wide))
    assert run_check(wrong) == 2
    err = capsys.readouterr().err
    assert "knobs[0].bounds: HAProxy weights are 0..256, got [-50, 100000]" in err
