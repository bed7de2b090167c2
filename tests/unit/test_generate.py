"""Generators: determinism, --check, alert conventions, promtool cases, dashboard rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tuneloop.catalog.base import MetricSpec, histogram
from tuneloop.generate import alerts, dashboards
from tuneloop.generate.cli import main, render_all
from tuneloop.generate.model import Alert, Case, Runbook

ROOT = Path(__file__).resolve().parents[2]


def test_generate_check_passes_on_the_committed_tree(capsys) -> None:
    assert main(["generate", "--check", "--root", str(ROOT)]) == 0
    assert render_all(ROOT) == render_all(ROOT)


def test_check_reports_stale_missing_and_orphaned_and_writes_nothing(tmp_path, capsys) -> None:
    for folder in ("alerts", "dashboards", "runbooks", "deploy"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "runbooks" / "TuneloopGpuLost.md").write_text("old\n")
    (tmp_path / "dashboards" / "gpu.json").unlink()
    (tmp_path / "runbooks" / "TuneloopGone.md").write_text("orphan\n")
    assert main(["generate", "--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "stale: runbooks/TuneloopGpuLost.md" in out
    assert "missing: dashboards/gpu.json" in out
    assert "orphaned: runbooks/TuneloopGone.md" in out
    assert (tmp_path / "runbooks" / "TuneloopGpuLost.md").read_text() == "old\n"
    assert main(["generate", "--root", str(tmp_path)]) == 0
    assert main(["generate", "--check", "--root", str(tmp_path)]) == 0
    assert not (tmp_path / "runbooks" / "TuneloopGone.md").exists()


def test_every_alert_follows_the_conventions_and_has_both_cases() -> None:
    groups = alerts.load_groups(ROOT)
    rules = yaml.safe_load((ROOT / alerts.RULES_FILE).read_text())
    rendered = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert len(rendered) == len(alerts.all_alerts(groups)) >= 25
    for rule in rendered:
        assert rule["alert"].startswith("Tuneloop")
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"].endswith(".")
        assert rule["annotations"]["runbook_url"].endswith(f"/runbooks/{rule['alert']}.md")
    for group in groups:
        tests = yaml.safe_load((ROOT / alerts.TESTS_DIR / f"{group.name}.yaml").read_text())
        for alert in group.alerts:
            cases = [
                t["alert_rule_test"][0]
                for t in tests["tests"]
                if t["alert_rule_test"][0]["alertname"] == alert.name
            ]
            assert sorted(bool(c["exp_alerts"]) for c in cases) == [False, True], alert.name


def test_burn_rate_alerts_use_the_workbook_windows_and_factors() -> None:
    rules = yaml.safe_load((ROOT / alerts.RULES_FILE).read_text())
    by_name = {r.get("alert") or r["record"]: r for g in rules["groups"] for r in g["rules"]}
    for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert f"model:tuneloop_inference_errors:ratio_rate{w}" in by_name
    page = by_name["TuneloopInferenceErrorBudgetBurn"]["expr"]
    assert "ratio_rate1h > 0.144 and" in page and "ratio_rate6h > 0.06 and" in page
    ticket = by_name["TuneloopInferenceTtftBudgetSlowBurn"]["expr"]
    assert "ratio_rate1d > 0.03 and" in ticket and "ratio_rate3d > 0.01 and" in ticket


def _alert(**changes) -> Alert:
    base = dict(
        name="TuneloopThing",
        expr="tuneloop_gpu_lost == 1",
        severity="warning",
        for_="5m",
        summary="A thing.",
        description="{{ $labels.gpu }} thing.",
        runbook=Runbook("m", "i", ("tuneloop_gpu_lost",), ("kubectl get pods",), ("fix",)),
        fires=Case(
            (("tuneloop_gpu_lost", "1"),), "1m", labels={"gpu": "0"}, description="0 thing."
        ),
        quiet=Case((("tuneloop_gpu_lost", "0"),), "1m"),
    )
    base.update(changes)
    return Alert(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "GpuThing"}, "CamelCase"),
        ({"severity": "page"}, "severity"),
        ({"summary": "No period"}, "period"),
        ({"description": "static"}, "templated"),
        ({"quiet": Case((), "1m", labels={"a": "b"}, description="x")}, "quiet"),
    ],
)
def test_bad_alert_definitions_are_refused_naming_the_alert(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        _alert(**changes)


def test_dashboards_have_stable_uids_units_and_a_datasource_variable() -> None:
    paths = dashboards.sources(ROOT)
    assert [dashboards.stem(p) for p in paths] == ["fleet", "gpu", "network", "numa", "tuner"]
    for path in paths:
        data = json.loads(dashboards.to_json(dashboards.load(path)))
        assert data["uid"] == f"tuneloop-{dashboards.stem(path)}"
        assert data["templating"]["list"][0]["name"] == "datasource"
        panels = [p for p in data["panels"] if p["type"] != "row"]
        assert panels
        for panel in panels:
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            assert panel["datasource"] == "${datasource}"
    tuner = json.loads((ROOT / "dashboards" / "tuner.json").read_text())
    assert {a["name"] for a in tuner["annotations"]["list"]} == {"Trials", "Knob changes"}


def test_kustomization_lists_every_generated_dashboard() -> None:
    kustomization = yaml.safe_load(
        (ROOT / "deploy/overlays/kube-prometheus-stack/kustomization.yaml").read_text()
    )
    files = {f for g in kustomization["configMapGenerator"] for f in g["files"]}
    assert files == {
        f"generated/dashboards/{dashboards.stem(p)}.json" for p in dashboards.sources(ROOT)
    }
    assert "generated/prometheusrule.yaml" in kustomization["resources"]


def test_histogram_specs_expose_three_samples_and_refuse_bad_names() -> None:
    spec = histogram("tuneloop_x_seconds", "x", "a", unit="seconds")
    assert spec.sample_names() == (
        "tuneloop_x_seconds_bucket",
        "tuneloop_x_seconds_sum",
        "tuneloop_x_seconds_count",
    )
    family = spec.family()
    family.add_metric(["1"], [("1.0", 2.0), ("+Inf", 3.0)], 4.5)
    assert [s.name for s in family.samples][-2:] == [
        "tuneloop_x_seconds_count",
        "tuneloop_x_seconds_sum",
    ]
    with pytest.raises(ValueError, match="suffix"):
        histogram("tuneloop_x_count", "x")
    with pytest.raises(ValueError, match="not a histogram"):
        MetricSpec("tuneloop_y", "gauge", "y").histogram_family()
