"""Load ``dashboards/*.dashboard.py`` by path and render each ``dashboard`` to JSON.

The uid comes from the file name (``fleet.dashboard.py`` -> ``tuneloop-fleet``), so links and
provisioning survive a title change; the JSON is written with sorted keys for stable diffs.

grafanalib emits schema version 12, which Grafana migrates through some thirty steps on every
load, and a fixed ``maxDataPoints`` of 100, which averages short TTFT spikes away. The JSON is
post-processed instead: :data:`SCHEMA_VERSION` (Grafana 11's), every ``maxDataPoints`` removed
so Grafana sizes queries to the panel's width, each query's legacy ``intervalFactor`` (2, half
the resolution) and ``step`` dropped for the same reason, and every data source reference
written the way that schema wants it (``{"type": "prometheus", "uid": "${datasource}"}``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import attr
from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

DASHBOARDS_DIR = "dashboards"
SOURCE_SUFFIX = ".dashboard.py"
DEPLOY_COPIES = "deploy/overlays/kube-prometheus-stack/generated/dashboards"
SCHEMA_VERSION = 39
DATASOURCE_VARIABLE = "${datasource}"
DATASOURCE_REF = {"type": "prometheus", "uid": DATASOURCE_VARIABLE}


def sources(root: Path) -> list[Path]:
    """The dashboard source files, sorted."""
    return sorted((root / DASHBOARDS_DIR).glob(f"*{SOURCE_SUFFIX}"))


def stem(path: Path) -> str:
    """``fleet.dashboard.py`` -> ``fleet``."""
    return path.name[: -len(SOURCE_SUFFIX)]


def uid_for(path: Path) -> str:
    """The dashboard's stable uid."""
    return f"tuneloop-{stem(path)}"


def load(path: Path) -> Dashboard:
    """Execute one source file and return its ``dashboard``, uid set from the file name."""
    module_name = f"_tuneloop_dashboard_{stem(path).replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(module_name, None)
    board = getattr(module, "dashboard", None)
    if not isinstance(board, Dashboard):
        raise ValueError(f"{path}: must define `dashboard`, a grafanalib Dashboard")
    return attr.evolve(board, uid=uid_for(path))


def _modernise(node: Any) -> Any:
    """Drop ``maxDataPoints`` and turn ``"${datasource}"`` references into objects, in place."""
    if isinstance(node, dict):
        node.pop("maxDataPoints", None)
        if node.get("datasource") == DATASOURCE_VARIABLE:
            node["datasource"] = dict(DATASOURCE_REF)
        for target in node.get("targets", []):
            target.pop("intervalFactor", None)
            target.pop("step", None)
        for value in node.values():
            _modernise(value)
    elif isinstance(node, list):
        for item in node:
            _modernise(item)
    return node


def to_json(board: Dashboard) -> str:
    """The dashboard as Grafana JSON at :data:`SCHEMA_VERSION`, keys sorted."""
    data: Any = json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder))
    data["schemaVersion"] = SCHEMA_VERSION
    _modernise(data)
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


def render(root: Path) -> dict[str, str]:
    """Relative path -> JSON of every dashboard, and its copy for the deploy overlay."""
    files: dict[str, str] = {}
    for path in sources(root):
        text = to_json(load(path))
        files[f"{DASHBOARDS_DIR}/{stem(path)}.json"] = text
        files[f"{DEPLOY_COPIES}/{stem(path)}.json"] = text
    return files
