"""The experiment's ``signals:`` section: source, scope and the Prometheus client settings."""

from __future__ import annotations

import pytest

from tuneloop.validation import ConfigError
from tuner.signals.settings import Scope, SignalSettings, parse_signal_settings, require_prometheus


def test_defaults_are_the_fleet_unscoped():
    settings = parse_signal_settings({})
    assert settings == SignalSettings()
    assert settings.source == "fleet" and settings.scope.is_empty()
    assert parse_signal_settings(None) == SignalSettings()


def test_full_section():
    settings = parse_signal_settings(
        {
            "prometheus": "http://prometheus.monitoring:9090",
            "timeout": "2s",
            "retries": 4,
            "scope": {"model": "llama", "namespace": "prod|canary", "node": "gpu-.*"},
        }
    )
    assert settings.prometheus == "http://prometheus.monitoring:9090"
    assert settings.timeout_s == 2.0 and settings.retries == 4
    assert settings.scope == Scope(model="llama", namespace="prod|canary", node="gpu-.*")


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ({"scope": {"model": ""}}, "signals.scope.model", "non-empty string"),
        ({"scope": {"target": "vllm-("}}, "signals.scope.target", "regular expression"),
        ({"scope": {"modle": "x"}}, "signals.scope.modle", "unknown field"),
        ({"source": "grafana"}, "signals.source", "fleet, loadgen, haproxy"),
        ({"source": "haproxy"}, "signals.scope.backend", "required with source haproxy"),
        (
            {"source": "haproxy", "scope": {"backend": "llm", "model": "m"}},
            "signals.scope.model",
            "no meaning for source haproxy",
        ),
        ({"scope": {"backend": "llm"}}, "signals.scope.backend", "source haproxy only"),
        ({"prometheus": "prometheus:9090"}, "signals.prometheus", "http:// or https://"),
        ({"retries": 11}, "signals.retries", "<= 10"),
        ({"timeout": "soon"}, "signals.timeout", "duration"),
        ({"url": "http://x"}, "signals.url", "unknown field"),
    ],
)
def test_errors_name_the_field(raw, field, reason):
    with pytest.raises(ConfigError) as err:
        parse_signal_settings(raw)
    assert err.value.field == field
    assert reason in err.value.reason


def test_field_prefix_is_the_callers():
    with pytest.raises(ConfigError) as err:
        parse_signal_settings({"scope": {"node": "["}}, "experiments[2].signals")
    assert err.value.field == "experiments[2].signals.scope.node"


def test_prometheus_url_is_required_to_build_a_client():
    with pytest.raises(ConfigError, match=r"signals.prometheus: is required"):
        require_prometheus(SignalSettings())
    assert require_prometheus(SignalSettings(prometheus="http://p:9090")) == "http://p:9090"
