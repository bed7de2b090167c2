"""run_preflight with Kubernetes appliers on the fake API server and scripted signals."""

from __future__ import annotations

import pytest

from tests.fakes.kube_apiserver import FakeApiServer, deployment, hpa
from tuner.appliers.registry import build_appliers
from tuner.preflight import experiment_signals, run_preflight
from tuner.signals.base import SignalError, SignalRef, Signals
from tuner.spec import loads_experiment


class ScriptedSignals(Signals):
    """Answers by query text: a number, None (no data) or an exception; records every ask."""

    def __init__(self, answers: dict[str, float | Exception | None]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, float]] = []

    def value(self, ref: SignalRef, window_s: float) -> float | None:
        self.asked.append((ref.describe(), window_s))
        answer = self.answers.get(ref.describe(), 1.0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def api():
    with FakeApiServer() as server:
        server.add("deployments", deployment("ml", "web", replicas=2))
        server.add("deployments", deployment("ml", "llm", replicas=3))
        server.add("horizontalpodautoscalers", hpa("ml", "llm-hpa", "llm", 2, 6, 70))
        yield server


def experiment(url: str, knobs: str):
    return loads_experiment(f"""
name: kube
appliers:
  scale: {{kind: k8s-scale, host: "{url}", retries: 0}}
  hpa: {{kind: k8s-hpa, host: "{url}", retries: 0}}
knobs:
{knobs}
objective: {{query: "objective"}}
constraints:
  - {{name: slo, query: "slo", max: 1}}
measurement: {{window: 45s}}
""")


def test_every_signal_is_asked_once_and_every_knob_read(api):
    exp = experiment(
        api.url,
        "  - {name: r, applier: scale, target: ml/web, type: int, bounds: [1, 8], class: warm}\n"
        "  - {name: m, applier: hpa, target: 'ml/llm-hpa:min', type: int, bounds: [1, 4],"
        " class: warm}",
    )
    signals = ScriptedSignals({"slo": None, "signal:request_rate": SignalError("down: HTTP 503")})
    report = run_preflight(exp, build_appliers(exp), signals)
    assert [label for label, _ in experiment_signals(exp)] == [
        "objective",
        "constraints[0] (slo)",
        "measurement.rate",
    ]
    assert signals.asked == [("objective", 45.0), ("slo", 45.0), ("signal:request_rate", 45.0)]
    assert [s.status for s in report.signals] == ["OK", "OK (no data)", "FAIL"]
    assert report.signals[2].error == "down: HTTP 503"
    assert [(k.name, k.value, k.ok) for k in report.knobs] == [("r", 2, True), ("m", 2, True)]
    assert not report.ok
    assert api.writes() == []  # preflight changes nothing


def test_hpa_min_knob_above_the_current_max_fails_at_preflight(api):
    exp = experiment(
        api.url,
        "  - {name: m, applier: hpa, target: 'ml/llm-hpa:min', type: int, bounds: [1, 9],"
        " class: warm}",
    )
    report = run_preflight(exp, build_appliers(exp), ScriptedSignals({}))
    assert not report.ok
    assert report.knobs[0].value == 2
    assert report.knobs[0].errors == (
        "knobs[0].bounds: HPA ml/llm-hpa: min may reach 9 but maxReplicas is 6; "
        "min must stay <= max",
    )
    assert "FAIL         knob m (hpa ml/llm-hpa:min)" in report.text()


def test_unreadable_targets_fail_their_knob_only(api):
    exp = experiment(
        api.url,
        "  - {name: r, applier: scale, target: ml/gone, type: int, bounds: [1, 8], class: warm}\n"
        "  - {name: s, applier: scale, target: ml/web, type: int, bounds: [1, 8], class: warm}",
    )
    report = run_preflight(exp, build_appliers(exp), ScriptedSignals({}))
    assert [k.ok for k in report.knobs] == [False, True]
    assert "not found" in report.knobs[0].errors[0]
    data = report.to_json()
    assert data["ok"] is False and data["knobs"][1]["value"] == 2
