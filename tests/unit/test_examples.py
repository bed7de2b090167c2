"""Every example experiment loads, and names only signals its source answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.example_files import EXAMPLES, load_example
from tuner.signals.builtin import builtin_query

# Cluster experiments: the lab's templates and the traffic shifter's file are not experiments.
FILES = sorted(
    p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith("lab-") and p.name != "shift.yaml"
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_cluster_examples_load_and_their_signals_resolve(path: Path, tmp_path: Path):
    exp, settings = load_example(path, tmp_path)
    refs = [exp.objective.ref, exp.measurement.rate, *(c.ref for c in exp.constraints)]
    for ref in refs:
        if ref.signal is not None:
            assert "$window" in builtin_query(ref.signal, settings)


def test_every_knob_family_has_a_cluster_example():
    kinds = set()
    for path in FILES:
        text = path.read_text()
        kinds |= {k for k in ("k8s-configmap", "k8s-env", "k8s-scale", "haproxy") if k in text}
    assert kinds == {"k8s-configmap", "k8s-env", "k8s-scale", "haproxy"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_cluster_examples_are_scoped_to_one_service(path: Path, tmp_path: Path):
    _, settings = load_example(path, tmp_path)
    assert settings.source == "fleet"
    assert settings.scope.model is not None


def test_vllm_metric_names_are_stated_in_each_cluster_example():
    for path in FILES:
        assert "vllm:" in path.read_text(), path.name
