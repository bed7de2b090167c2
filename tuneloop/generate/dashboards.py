"""Load ``dashboards/*.dashboard.py`` by path and render each ``dashboard`` to JSON.

The uid comes from the file name (``fleet.dashboard.py`` -> ``tuneloop-fleet``), so links and
provisioning survive a title change; the JSON is written with sorted keys for stable diffs.
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


def to_json(board: Dashboard) -> str:
    """The dashboard as Grafana JSON, keys sorted."""
    data: Any = board.to_json_data()
    return json.dumps(data, cls=DashboardEncoder, sort_keys=True, indent=2) + "\n"


def render(root: Path) -> dict[str, str]:
    """Relative path -> JSON of every dashboard, and its copy for the deploy overlay."""
    files: dict[str, str] = {}
    for path in sources(root):
        text = to_json(load(path))
        files[f"{DASHBOARDS_DIR}/{stem(path)}.json"] = text
        files[f"{DEPLOY_COPIES}/{stem(path)}.json"] = text
    return files
