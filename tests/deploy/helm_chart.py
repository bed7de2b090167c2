"""Render the Helm chart offline with Helm's own Go SDK (the ``helm-python-sdk`` wheel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "tuneloop"


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the chart makes for ``values`` (NOTES.txt left out)."""
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name="tuneloop", namespace="tuneloop", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The objects of ``kind`` (named ``name``, when given)."""
    return [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
