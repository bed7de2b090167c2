"""Query rendering for PrometheusSignals (the HTTP side is tested against a real Prometheus)."""

from __future__ import annotations

import pytest

from tuner.signals.base import BUILTIN_SIGNALS, SignalError, SignalRef
from tuner.signals.prometheus import (
    BUILTIN_QUERIES,
    PrometheusSignals,
    duration_literal,
    expression,
)


@pytest.mark.parametrize(
    ("seconds", "literal"),
    [(30, "30s"), (30.0, "30s"), (1.5, "1500ms"), (0.25, "250ms"), (600, "600s")],
)
def test_duration_literal(seconds, literal):
    assert duration_literal(seconds) == literal


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), 0.0001])
def test_bad_windows_are_errors(bad):
    with pytest.raises(SignalError, match=r"window"):
        duration_literal(bad)


def test_every_builtin_signal_has_a_template_that_aggregates():
    assert set(BUILTIN_QUERIES) == set(BUILTIN_SIGNALS)
    for name, template in BUILTIN_QUERIES.items():
        assert "$window" in template, name
        assert template.lstrip("(").split("(")[0] in {"histogram_quantile", "sum", "avg", "min"}, (
            name
        )


def test_window_is_substituted_everywhere():
    query = expression(SignalRef(signal="error_ratio"), 45)
    assert "$window" not in query
    assert query.count("[45s]") == 2
    assert expression(SignalRef(query="max(rate(x[$window]))"), 2.5) == "max(rate(x[2500ms]))"


def test_p99_ttft_reads_the_loadgen_histogram():
    assert expression(SignalRef(signal="p99_ttft_seconds"), 30) == (
        "histogram_quantile(0.99, sum by (le) (rate(tuneloop_loadgen_ttft_seconds_bucket[30s])))"
    )


def test_unknown_signal_names_the_known_ones():
    with pytest.raises(SignalError, match=r"unknown signal 'p42'.*p99_ttft_seconds"):
        expression(SignalRef(signal="p42"), 30)


def test_negative_retries_rejected():
    with pytest.raises(ValueError, match=r"retries"):
        PrometheusSignals("http://127.0.0.1:9", retries=-1)
