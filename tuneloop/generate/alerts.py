"""Render alert definitions into Prometheus rules, promtool tests and a PrometheusRule.

Definitions live in ``alerts/*.py`` (each module holds ``GROUPS``), loaded by path so the
``alerts/`` folder needs no package. ``runbook_url`` is added here, in one place, from
:data:`RUNBOOK_BASE_URL`; so are the expected ``summary`` and ``runbook_url`` annotations of each
promtool case, which therefore test the templated description only where it varies.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import yaml

from tuneloop.generate.model import Alert, Case, Group

RUNBOOK_BASE_URL = "https://github.com/tuneloop/tuneloop/blob/main/runbooks/"
RULES_FILE = "alerts/rules.yaml"
# The lab loads the rules as package data, so an installed lab has them too.
LAB_RULES_FILE = "lab/data/rules.yaml"
TESTS_DIR = "alerts/tests"
PROMETHEUS_RULE_FILE = "deploy/overlays/kube-prometheus-stack/generated/prometheusrule.yaml"
PROMETHEUS_RULE_NAME = "tuneloop"
PROMETHEUS_RULE_NAMESPACE = "tuneloop-agent"


def runbook_url(alert: Alert) -> str:
    """Where an alert's runbook page lives."""
    return f"{RUNBOOK_BASE_URL}{alert.name}.md"


def load_groups(root: Path) -> list[Group]:
    """Every ``GROUPS`` of ``alerts/*.py`` under ``root``, in file order; names must be unique."""
    groups: list[Group] = []
    for path in sorted((root / "alerts").glob("*.py")):
        module_name = f"_tuneloop_alerts_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"{path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        finally:
            sys.modules.pop(module_name, None)
        found = getattr(module, "GROUPS", None)
        if found is None:
            continue
        if not all(isinstance(g, Group) for g in found):
            raise ValueError(f"{path}: GROUPS must be a sequence of Group")
        groups.extend(found)
    seen: set[str] = set()
    for alert in all_alerts(groups):
        if alert.name in seen:
            raise ValueError(f"alert {alert.name} is defined twice")
        seen.add(alert.name)
    return groups


def all_alerts(groups: list[Group]) -> list[Alert]:
    """Alerts of every group, in order."""
    return [alert for group in groups for alert in group.alerts]


def _annotations(alert: Alert) -> dict[str, str]:
    return {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": runbook_url(alert),
    }


def _rule(alert: Alert) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
    if alert.for_ not in ("", "0m", "0s"):
        rule["for"] = alert.for_
    rule["labels"] = {"severity": alert.severity}
    rule["annotations"] = _annotations(alert)
    return rule


def rule_groups(groups: list[Group]) -> dict[str, Any]:
    """The ``groups:`` document Prometheus loads."""
    out = []
    for group in groups:
        rules: list[dict[str, Any]] = [
            {"record": r.record, "expr": r.expr} for r in group.recordings
        ]
        rules += [_rule(a) for a in group.alerts]
        entry: dict[str, Any] = {"name": group.name}
        if group.interval:
            entry["interval"] = group.interval
        entry["rules"] = rules
        out.append(entry)
    return {"groups": out}


def dump(document: Any) -> str:
    """Stable YAML: keys in insertion order, long lines kept whole."""
    return yaml.safe_dump(document, sort_keys=False, width=1000, allow_unicode=True)


def _case(alert: Alert, case: Case, fires: bool) -> dict[str, Any]:
    expected: list[dict[str, Any]] = []
    if fires:
        labels = {**case.labels, "severity": alert.severity}
        annotations = {**_annotations(alert), "description": case.description}
        expected.append({"exp_labels": labels, "exp_annotations": annotations})
    return {
        "name": f"{alert.name} {'fires' if fires else 'stays quiet'}",
        "interval": case.interval,
        "input_series": [{"series": s, "values": v} for s, v in case.series],
        "alert_rule_test": [
            {"eval_time": case.eval_time, "alertname": alert.name, "exp_alerts": expected}
        ],
    }


def promtool_tests(group: Group) -> dict[str, Any]:
    """A promtool test file for one group: a firing and a quiet case per alert."""
    tests = []
    for alert in group.alerts:
        tests.append(_case(alert, alert.fires, True))
        tests.append(_case(alert, alert.quiet, False))
    return {
        "rule_files": ["../rules.yaml"],
        "evaluation_interval": "1m",
        "tests": tests,
    }


def prometheus_rule(groups: list[Group]) -> dict[str, Any]:
    """The same groups wrapped as a prometheus-operator PrometheusRule."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": PROMETHEUS_RULE_NAME,
            "namespace": PROMETHEUS_RULE_NAMESPACE,
            "labels": {
                "app.kubernetes.io/name": "tuneloop",
                "app.kubernetes.io/part-of": "tuneloop",
            },
        },
        "spec": rule_groups(groups),
    }


def render(root: Path) -> dict[str, str]:
    """Relative path -> content of every alert artifact."""
    groups = load_groups(root)
    header = "# Generated by `tuneloop generate` from alerts/*.py; do not edit.\n"
    files = {
        RULES_FILE: header + dump(rule_groups(groups)),
        LAB_RULES_FILE: header + dump(rule_groups(groups)),
        PROMETHEUS_RULE_FILE: header + dump(prometheus_rule(groups)),
    }
    for group in groups:
        files[f"{TESTS_DIR}/{group.name}.yaml"] = header + dump(promtool_tests(group))
    return files
