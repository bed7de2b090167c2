"""Knob targets and bounds are checked against what each system accepts when appliers are built."""

from __future__ import annotations

import pytest

from tuneloop.validation import ConfigError
from tuner.appliers.registry import build_appliers, check_knob_bounds, knob_problems
from tuner.spec import loads_experiment

APPLIERS = """
appliers:
  lb: {kind: haproxy, address: "127.0.0.1:1"}
  ng:
    kind: nginx
    upstream: llm
    servers: {r0: "127.0.0.1:8000", r1: "[::1]:8001"}
    upstream_file: /tmp/up.conf
    conf: /tmp/nginx.conf
    pid_file: /tmp/nginx.pid
  scale: {kind: k8s-scale, host: "http://127.0.0.1:1"}
  hpa: {kind: k8s-hpa, host: "http://127.0.0.1:1"}
  env: {kind: k8s-env, host: "http://127.0.0.1:1"}
"""


def experiment(*knobs: str):
    lines = "\n".join(f"  - {knob}" for knob in knobs)
    text = f"name: bounds\n{APPLIERS}knobs:\n{lines}\nobjective: {{signal: request_rate}}\n"
    return loads_experiment(text)


def knob(name: str, applier: str, target: str, bounds: str, kind: str = "int") -> str:
    return (
        f"{{name: {name}, applier: {applier}, target: '{target}', type: {kind}, "
        f"bounds: {bounds}, class: hot}}"
    )


def test_bounds_within_what_every_system_accepts_build():
    exp = experiment(
        knob("w0", "lb", "llm/r0", "[0, 256]"),
        knob("n0", "ng", "r1", "[1, 1000]"),
        knob("replicas", "scale", "ml/llm", "[0, 12]"),
        knob("hpa_min", "hpa", "ml/llm:min", "[1, 4]"),
        knob("hpa_max", "hpa", "ml/llm:max", "[4, 16]"),
        knob("batch", "env", "ml/llm/vllm:--max-num-seqs", "[8, 100000]"),
    )
    assert set(build_appliers(exp)) == {"lb", "ng", "scale", "hpa", "env"}


@pytest.mark.parametrize(
    ("knob_text", "message"),
    [
        (
            knob("w", "lb", "llm/r0", "[-50, 100000]"),
            "knobs[0].bounds: HAProxy weights are 0..256, got [-50, 100000]",
        ),
        (knob("w", "lb", "llm/r0", "[0.5, 257.5]", "real"), "HAProxy weights are 0..256"),
        (knob("n", "ng", "r0", "[0, 10]"), "bounds: nginx weights are 1..1000, got [0, 10]"),
        (knob("r", "scale", "ml/llm", "[-1, 3]"), "Deployment replicas are 0..10000, got [-1, 3]"),
        (knob("m", "hpa", "ml/llm:min", "[0, 3]"), "HPA minReplicas are 1..10000, got [0, 3]"),
        (knob("c", "hpa", "ml/llm:target_cpu", "[5, 2000]"), "CPU utilization targets"),
        (knob("w", "lb", "llm/r0;help", "[1, 2]"), "knobs[0].target: haproxy: server"),
        (knob("w", "lb", "llm", "[1, 2]"), "knobs[0].target: haproxy: must be 'backend/server'"),
        (knob("n", "ng", "r9", "[1, 2]"), "knobs[0].target: nginx: unknown server 'r9'"),
        (knob("r", "scale", "ml/llm/x", "[1, 2]"), "knobs[0].target: k8s-scale: target must be"),
        (knob("m", "hpa", "ml/llm:maxi", "[1, 2]"), "knobs[0].target: k8s-hpa: ml/llm:maxi"),
    ],
)
def test_what_a_system_cannot_take_is_refused_at_load(knob_text, message):
    with pytest.raises(ConfigError) as caught:
        build_appliers(experiment(knob_text))
    assert message in str(caught.value)


def test_hpa_min_may_not_rise_above_what_max_may_fall_to():
    exp = experiment(
        knob("hpa_min", "hpa", "ml/llm:min", "[1, 8]"),
        knob("hpa_max", "hpa", "ml/llm:max", "[4, 16]"),
    )
    with pytest.raises(ConfigError, match=r"^knobs\[0\]\.bounds: HPA ml/llm: min may reach 8"):
        build_appliers(exp)


def test_categorical_values_are_checked_too():
    text = "{name: w, applier: lb, target: llm/r0, type: categorical, values: [1, 300], class: hot}"
    with pytest.raises(ConfigError, match=r"^knobs\[0\]\.values: HAProxy weights are 0\.\.256"):
        build_appliers(experiment(text))


def test_every_problem_is_listed_and_bounds_alone_can_be_checked():
    exp = experiment(
        knob("a", "lb", "llm/r0;x", "[1, 2]"),
        knob("b", "lb", "llm/r1", "[1, 999]"),
        knob("c", "ng", "r0", "[2, 3]"),
    )
    appliers = build_appliers(experiment(knob("ok", "lb", "llm/r0", "[1, 2]")))
    appliers.update(build_appliers(experiment(knob("ok", "ng", "r0", "[1, 2]"))))
    fields = [problem.field for problem in knob_problems(exp, appliers)]
    assert fields == ["knobs[0].target", "knobs[1].bounds"]
    with pytest.raises(ConfigError, match=r"^knobs\[1\]\.bounds"):
        check_knob_bounds(exp, appliers)
