"""dcgm-exporter's own dashboard and common dcgm-exporter alert expressions answer from tuneloop.

A real Prometheus scrapes the agent on a fake 8-GPU node (the fake NVML backend) the way the
ServiceMonitor does (``honor_labels``, the Kubernetes node as ``node``) and evaluates the
generated compatibility rules. The dashboard's template variables are resolved the way Grafana
resolves them with "All" selected, substituted into every panel query, and each query must return
data, except the ones listed in :data:`MAY_BE_EMPTY` with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from lab import programs, prometheus_conf
from lab.processes import free_port
from tests.paths import FIXTURES, ROOT
from tests.realprocs.prometheus import query, wait_for_result

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not programs.available(programs.PROMETHEUS_BINARY), reason="needs prometheus"
    ),
]

RULES = ROOT / "alerts" / "dcgm_compat_rules.yaml"
DASHBOARD = FIXTURES / "dcgm" / "dcgm-exporter-dashboard.json"
EIGHT_GPUS = FIXTURES / "gpu" / "eight_gpus.json"
NODE_NAME = "gpu-node-7"
DEADLINE_S = 60.0

# Names the fake node cannot publish, with the reason; a query naming one must stay empty (so
# the list is pruned once the fake publishes it). Every name the stock dashboard and the alert
# expressions below read has a source on the fake 8-GPU node today.
MAY_BE_EMPTY: dict[str, str] = {}

# Alert expressions commonly written against dcgm-exporter (it ships none), without their
# thresholds so that each must return the series it would compare.
ALERT_EXPRESSIONS = (
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)",
    "increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[5m])",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "rate(DCGM_FI_DEV_PCIE_REPLAY_COUNTER[5m])",
)


def wait_for(url: str, promql: str) -> list[dict[str, Any]]:
    return wait_for_result(url, promql, DEADLINE_S)


def label_values(url: str, variable_query: str) -> list[str]:
    """Grafana's ``label_values(selector, label)`` through Prometheus's series API."""
    match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable_query)
    assert match, variable_query
    selector, label = match.groups()
    reply = requests.get(f"{url}/api/v1/series", params={"match[]": selector}, timeout=5)
    reply.raise_for_status()
    return sorted({s[label] for s in reply.json()["data"] if label in s})


_REGEX_META = re.compile(r"([\\.+*?^$()\[\]{}|])")


def substitute(text: str, variables: dict[str, list[str]]) -> str:
    """Each ``$name`` as Grafana writes a multi-value "All" selection into a regex."""
    for name in sorted(variables, key=len, reverse=True):
        values = "|".join(_REGEX_META.sub(r"\\\\\1", v) for v in variables[name])
        text = text.replace(f"${name}", f"({values})")
    return text


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def may_be_empty(expr: str) -> bool:
    """True when the expression reads a name the fake node cannot publish."""
    return bool(set(re.findall(r"DCGM_FI_\w+", expr)) & set(MAY_BE_EMPTY))


@pytest.fixture
def prometheus_url(tmp_path: Path) -> Iterator[str]:
    agent_port = free_port()
    agent = subprocess.Popen(
        [
            sys.executable,
            *("-m", "agent.cli", "serve", "--listen", f"127.0.0.1:{agent_port}"),
            *(
                "--sysfs",
                str(FIXTURES / "node" / "sys"),
                "--procfs",
                str(FIXTURES / "node" / "proc"),
            ),
            *("--state-dir", str(tmp_path), "--collectors", "gpu"),
            *("--gpu-backend", "fake", "--fake-gpus", str(EIGHT_GPUS)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        prometheus_conf.render(
            {"tuneloop-agent": [f"127.0.0.1:{agent_port}"]},
            labels={"cluster": "lab", "node": NODE_NAME},
            honor_labels={"tuneloop-agent"},
            rule_files=[RULES],
        )
    )
    port = free_port()
    prometheus = programs.start_prometheus(
        config, tmp_path / "data", port, log=tmp_path / "prometheus.log", die_with_parent=True
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        prometheus.stop()
        agent.terminate()
        agent.wait(timeout=10)


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="needs promtool")
def test_promtool_checks_the_compat_rules_and_their_unit_test() -> None:
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = ROOT / "alerts" / "tests" / "tuneloop-dcgm-compat.yaml"
    test = subprocess.run([PROMTOOL, "test", "rules", str(unit)], capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_dcgm_dashboard_panel_and_alert_expression_returns_data(prometheus_url: str) -> None:
    url = prometheus_url
    dashboard = json.loads(DASHBOARD.read_text())
    assert wait_for(url, "DCGM_FI_DEV_FB_FREE"), "the compatibility rules published nothing"
    variables: dict[str, list[str]] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        text = variable["query"]
        text = text["query"] if isinstance(text, dict) else text
        variables[variable["name"]] = label_values(url, substitute(text, variables))
        assert variables[variable["name"]], f"variable {variable['name']} has no values"
    assert variables["Hostname"] == [NODE_NAME]
    assert variables["gpu"] == [str(i) for i in range(8)]

    empty = []
    queries = [*panel_queries(dashboard), *(("alert", expr) for expr in ALERT_EXPRESSIONS)]
    for title, expr in queries:
        if may_be_empty(expr):
            assert not query(url, substitute(expr, variables)), f"{expr} has data: see MAY_BE_EMPTY"
        elif not wait_for(url, substitute(expr, variables)):
            empty.append(f"{title}: {expr}")
    assert empty == []


def test_published_series_carry_dcgm_exporter_units_and_labels(prometheus_url: str) -> None:
    url = prometheus_url
    temps = wait_for(url, "DCGM_FI_DEV_GPU_TEMP")
    assert len(temps) == 8
    first = next(s for s in temps if s["metric"]["gpu"] == "0")["metric"]
    assert first["UUID"] == "GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000000"
    assert first["device"] == "nvidia0"
    assert first["modelName"] == "NVIDIA H100 80GB HBM3"
    assert first["Hostname"] == NODE_NAME == first["node"]
    assert first["pci_bus_id"] == "00000000:18:00.0"
    assert first["cluster"] == "lab" and first["job"] == "tuneloop-agent" and first["instance"]
    fake = json.loads(EIGHT_GPUS.read_text())["devices"][0]

    def value(promql: str) -> float:
        (sample,) = wait_for(url, promql)
        return float(sample["value"][1])

    assert value('DCGM_FI_DEV_GPU_UTIL{gpu="0"}') == pytest.approx(fake["utilization"]["gpu"])
    assert value('DCGM_FI_DEV_SM_CLOCK{gpu="0"}') == pytest.approx(fake["clocks_mhz"]["sm"])
    assert value('DCGM_FI_DEV_FB_USED{gpu="0"}') == pytest.approx(fake["memory"]["used"] / 2**20)
    assert value('DCGM_FI_DEV_POWER_USAGE{gpu="0"}') == pytest.approx(fake["power_mw"] / 1000)
    assert value('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0"}') == pytest.approx(
        fake["energy_mj"]
    )
    assert value('DCGM_FI_DEV_XID_ERRORS{gpu="0"}') == 0
