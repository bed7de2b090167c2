"""The tuner's metrics reach Prometheus through the chart's own ServiceMonitor, and alert there.

The chart is rendered (Helm's Go SDK, as tests/deploy/test_helm_chart.py does) with its defaults
plus ``tuner.mode: controller`` and ``monitoring.enabled: true``. Its ServiceMonitor for the tuner
is translated into the static scrape job prometheus-operator would generate for it: the named
port resolved through the Service it selects to the Deployment's container port, path, interval,
timeout, scheme, honorLabels, the operator's target labels (namespace, service, pod, container,
job = the Service's name, endpoint = the port's name) and any relabelings/metricRelabelings.
Kubernetes' service discovery is stood in for by ``__meta_kubernetes_*`` labels on the static
target. The translation refuses any field it does not know, so a change to the chart breaks this
test instead of being ignored.

A real Prometheus scrapes that job at the chart's interval and evaluates the lab's generated rules
(lab/data/rules.yaml) every second. ``python -m tuner.cli controller`` serves its metrics on the
port the chart scrapes and tunes real HAProxy weights under an SLO constraint that cannot hold,
so every trial is rolled back (reason ``breach``). Prometheus must then hold
``tuneloop_tuner_rollbacks_total`` with the chart's labels, and TuneloopTunerRolledBack (``for:``
0m in alerts/operations.py) must fire, with every label but the pod-bound ones.

The controller serves on the chart's port (9451) when it is free; on a machine where something
else holds it, the same job is pointed at a free port instead (only the target's port changes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from lab import programs, prometheus_conf
from lab.processes import exited, free_port, port_free, spawn, wait_until
from tests.realprocs import haproxy

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (programs.available(programs.PROMETHEUS_BINARY) and haproxy.available()),
        reason="prometheus and haproxy are needed",
    ),
]

pytest.importorskip("helm_python", reason="needs helm-python-sdk (the dev extra) to render")
from tests.deploy.helm_chart import CHART, find, render  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "lab" / "data" / "rules.yaml"
VALUES: dict[str, Any] = {"tuner": {"mode": "controller"}, "monitoring": {"enabled": True}}
MONITOR = "tuneloop-tuner"
ALERT = "TuneloopTunerRolledBack"
EXPERIMENT_NAME = "scrape-rollback"
# What Kubernetes' service discovery would attach to the tuner's endpoint.
POD = "tuneloop-tuner-5d8f7c9b4-x2k8q"
NODE = "cpu-node-1"

# Endpoint fields the translation understands; anything else fails the test.
ENDPOINT_FIELDS = {
    "port",
    "path",
    "interval",
    "scrapeTimeout",
    "scheme",
    "honorLabels",
    "relabelings",
    "metricRelabelings",
}
REQUIRED_FIELDS = {"port", "path", "interval", "scrapeTimeout"}
SPEC_FIELDS = {"selector", "namespaceSelector", "endpoints"}
RELABEL_KEYS = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}

EXPERIMENT = """
name: {name}
mode: apply
signals: {{prometheus: "{url}", timeout: 2s, retries: 0}}
appliers:
  lb: {{kind: haproxy, address: "{admin}"}}
knobs:
  - {{name: w0, type: int, applier: lb, target: llm/r0, class: hot, bounds: [1, 100]}}
  - {{name: w1, type: int, applier: lb, target: llm/r1, class: hot, bounds: [1, 100]}}
objective: {{query: 'sum(vector(1))', direction: maximize}}
# An SLO that no configuration can keep: every trial is backed out (reason "breach").
constraints:
  - {{name: ttft, query: 'vector(5)', max: 1.0}}
measurement:
  warmup: {{hot: 0s}}
  window: 2s
  check_interval: 1s
  rate: {{query: 'vector(5)'}}
budget: {{trials: 1}}
safety: {{max_relative_step: 1.0, cooldown: 0s}}
strategy: {{name: random, seed: 5}}
"""

METRIC_DEADLINE_S = 75.0  # chart interval 15s: first scrape, then the one after the rollback
ALERT_DEADLINE_S = 30.0  # rules every 1s; for: 0m


def _matches(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _relabel(rule: dict[str, Any]) -> dict[str, Any]:
    unknown = set(rule) - set(RELABEL_KEYS)
    assert not unknown, f"relabeling fields not translated: {sorted(unknown)}"
    return {RELABEL_KEYS[k]: v for k, v in rule.items()}


def translate(docs: list[dict[str, Any]], host: str = "127.0.0.1") -> tuple[dict[str, Any], int]:
    """The tuner's ServiceMonitor as prometheus-operator's scrape job, with a static target at
    ``host``:<the endpoint's container port>. Returns (job, port)."""
    (monitor,) = find(docs, "ServiceMonitor", MONITOR)
    spec = monitor["spec"]
    unknown = set(spec) - SPEC_FIELDS
    assert not unknown, f"ServiceMonitor spec fields not translated: {sorted(unknown)}"
    namespaces = spec["namespaceSelector"]["matchNames"]
    selector = spec["selector"]["matchLabels"]
    (service,) = [
        s
        for s in find(docs, "Service")
        if s["metadata"]["namespace"] in namespaces
        and _matches(s["metadata"].get("labels", {}), selector)
    ]
    ns, svc = service["metadata"]["namespace"], service["metadata"]["name"]
    (endpoint,) = spec["endpoints"]
    unknown = set(endpoint) - ENDPOINT_FIELDS
    assert not unknown, f"endpoint fields not translated: {sorted(unknown)}"
    missing = REQUIRED_FIELDS - set(endpoint)
    assert not missing, f"endpoint lacks fields the scrape job needs: {sorted(missing)}"

    # The named Service port, then its targetPort in the pods the Service selects: the address
    # Prometheus dials is the pod's (endpoints discovery), on the container's port.
    (svc_port,) = [p for p in service["spec"]["ports"] if p.get("name") == endpoint["port"]]
    target_port = svc_port.get("targetPort", svc_port["port"])
    (deployment,) = [
        d
        for d in find(docs, "Deployment")
        if d["metadata"]["namespace"] == ns
        and _matches(d["spec"]["template"]["metadata"]["labels"], service["spec"]["selector"])
    ]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    (container, port) = next(
        (c["name"], p["containerPort"])
        for c in containers
        for p in c.get("ports", [])
        if target_port in (p.get("name"), p["containerPort"])
    )

    meta = {
        "__meta_kubernetes_namespace": ns,
        "__meta_kubernetes_service_name": svc,
        "__meta_kubernetes_pod_name": POD,
        "__meta_kubernetes_pod_container_name": container,
        "__meta_kubernetes_pod_node_name": NODE,
        "__meta_kubernetes_endpoint_port_name": endpoint["port"],
    }
    # prometheus-operator's own target labels, in its order, before the endpoint's relabelings.
    operator = [
        {"source_labels": [f"__meta_kubernetes_{src}"], "target_label": dst}
        for src, dst in (
            ("namespace", "namespace"),
            ("service_name", "service"),
            ("pod_name", "pod"),
            ("pod_container_name", "container"),
            ("service_name", "job"),
        )
    ] + [{"target_label": "endpoint", "replacement": endpoint["port"]}]
    job: dict[str, Any] = {
        "job_name": f"serviceMonitor/{monitor['metadata']['namespace']}/{MONITOR}/0",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "scrape_interval": endpoint["interval"],
        "scrape_timeout": endpoint["scrapeTimeout"],
        "metrics_path": endpoint["path"],
        "scheme": endpoint.get("scheme", "http"),
        "static_configs": [{"targets": [f"{host}:{port}"], "labels": meta}],
        "relabel_configs": operator + [_relabel(r) for r in endpoint.get("relabelings", [])],
    }
    if endpoint.get("metricRelabelings"):
        job["metric_relabel_configs"] = [_relabel(r) for r in endpoint["metricRelabelings"]]
    return job, int(port)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    reply = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    reply.raise_for_status()
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


def firing(url: str) -> list[dict[str, Any]]:
    reply = requests.get(f"{url}/api/v1/alerts", timeout=5)
    reply.raise_for_status()
    return [a for a in reply.json()["data"]["alerts"] if a["labels"]["alertname"] == ALERT]


def poll(check: Any, deadline_s: float, step_s: float = 0.5) -> Any:
    """``check()`` until it returns something truthy, at most ``deadline_s`` (bounded count)."""
    deadline = time.monotonic() + deadline_s
    got = None
    for _ in range(int(deadline_s / step_s) + 1):
        got = check()
        if got or time.monotonic() > deadline:
            break
        time.sleep(step_s)
    return got


def rule_for(name: str) -> dict[str, Any]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                return dict(rule)
    raise AssertionError(f"{RULES} has no alert {name}")


def test_translation_sees_the_charts_endpoint() -> None:
    job, port = translate(render(VALUES))
    controller = yaml.safe_load((CHART / "files" / "controller.yaml").read_text())
    assert port == controller["metrics_port"] == 9451
    assert job["metrics_path"] == "/metrics" and job["scheme"] == "http"
    assert job["scrape_interval"] == "15s" and job["scrape_timeout"] == "10s"
    assert job["honor_labels"] is False
    assert job["static_configs"][0]["labels"]["__meta_kubernetes_pod_container_name"] == "tuner"


@pytest.mark.timeout(150)
def test_tuner_rollback_reaches_prometheus_and_fires_the_alert(tmp_path: Path) -> None:
    job, chart_port = translate(render(VALUES))
    port = chart_port if port_free(chart_port) else free_port()
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
    rule = rule_for(ALERT)
    assert rule.get("for", "0m") in ("0m", "0s"), f"{ALERT} has for: {rule['for']}; see docstring"

    base = yaml.safe_load(prometheus_conf.render({}, 1.0, rule_files=[RULES]))
    base["scrape_configs"] = [job]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(base, sort_keys=False))
    prom_port = free_port()
    url = f"http://127.0.0.1:{prom_port}"
    prom_log = tmp_path / "prometheus.log"
    prometheus = programs.start_prometheus(
        config, tmp_path / "data", prom_port, log=prom_log, die_with_parent=True
    )
    ctl_log = tmp_path / "controller.log"
    controller = None
    try:
        with haproxy.running_haproxy(tmp_path / "haproxy", {"llm": {"r0": 10, "r1": 30}}) as lb:
            exp = tmp_path / "experiment.yaml"
            exp.write_text(EXPERIMENT.format(name=EXPERIMENT_NAME, url=url, admin=lb.admin_address))
            ctl_config = tmp_path / "controller.yaml"
            ctl_config.write_text(
                yaml.safe_dump(
                    {
                        "experiments": [exp.name],
                        "state": "state",
                        "interval": "60s",
                        "metrics_port": port,
                    }
                )
            )
            argv = [sys.executable, "-m", "tuner.cli", "controller", "--config", str(ctl_config)]
            proc, record = spawn("controller", argv, ctl_log, die_with_parent=True, cwd=ROOT)
            controller = programs.Running(proc, record)

            def serving() -> bool:
                err = exited(proc, record)
                if err is not None:
                    raise err
                reply = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
                return reply.status_code == 200

            wait_until(serving, 30, "the controller's /metrics", step_s=0.2)
            promql = f'tuneloop_tuner_rollbacks_total{{job="{MONITOR}"}}'
            series = poll(lambda: query(url, promql), METRIC_DEADLINE_S)
            alerts = poll(
                lambda: [a for a in firing(url) if a["state"] == "firing"], ALERT_DEADLINE_S
            )
            targets = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]
    finally:
        if controller is not None:
            controller.stop()
        prometheus.stop()

    logs = (
        f"controller:\n{ctl_log.read_text()[-3000:]}\nprometheus:\n{prom_log.read_text()[-1500:]}"
    )
    (target,) = targets["activeTargets"]
    assert target["health"] == "up", (target, logs)
    assert target["scrapeInterval"] == "15s" and target["scrapeUrl"].endswith("/metrics")
    assert series, f"no rollback counter scraped; {logs}"
    chart_labels = {
        "job": MONITOR,
        "namespace": "tuneloop",
        "service": MONITOR,
        "pod": POD,
        "container": "tuner",
        "endpoint": "metrics",
        "instance": f"127.0.0.1:{port}",
        "experiment": EXPERIMENT_NAME,
        "reason": "breach",
    }
    (sample,) = series
    assert sample["metric"] == {"__name__": "tuneloop_tuner_rollbacks_total", **chart_labels}
    assert float(sample["value"][1]) >= 1
    assert alerts, f"{ALERT} not firing; {logs}"
    (alert,) = alerts
    # the alert compares across tuner pods (a restart must not fire it): pod and instance go
    pod_bound = {"pod", "instance"}
    kept = {k: v for k, v in chart_labels.items() if k not in pod_bound}
    assert alert["labels"] == {"alertname": ALERT, "severity": "info", **kept}
    assert EXPERIMENT_NAME in alert["annotations"]["description"]
    assert "breach" in alert["annotations"]["description"]
