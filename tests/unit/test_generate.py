"""Generators: determinism, --check, alert conventions, promtool cases, dashboard rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tuneloop import catalog
from tuneloop.catalog.base import MetricSpec, histogram
from tuneloop.generate import alerts, dashboards, panels
from tuneloop.generate.cli import main, render_all
from tuneloop.generate.model import Alert, Case, Runbook
from tuneloop.generate.promql import metric_names, sample_index

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
        assert rule["annotations"]["runbook_url"] == f"runbooks/{rule['alert']}.md"
    for group in groups:
        tests = yaml.safe_load((ROOT / alerts.TESTS_DIR / f"{group.name}.yaml").read_text())
        for alert in group.alerts:
            cases = [
                t["alert_rule_test"][0]
                for t in tests["tests"]
                if t["alert_rule_test"][0]["alertname"] == alert.name
            ]
            assert {bool(c["exp_alerts"]) for c in cases} == {False, True}, alert.name


def test_burn_rate_alerts_use_the_workbook_windows_and_factors() -> None:
    rules = yaml.safe_load((ROOT / alerts.RULES_FILE).read_text())
    by_name = {r.get("alert") or r["record"]: r for g in rules["groups"] for r in g["rules"]}
    for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert f"model:tuneloop_inference_errors:ratio_rate{w}" in by_name
    page = by_name["TuneloopInferenceErrorBudgetBurn"]["expr"]
    assert 'ratio_rate1h{model!="meta-llama/Llama-3.1-405B-Instruct"} > 0.144 and' in page
    assert 'ratio_rate6h{model="meta-llama/Llama-3.1-405B-Instruct"} > 0.03 and' in page
    ticket = by_name["TuneloopInferenceTtftBudgetSlowBurn"]["expr"]
    assert "ratio_rate1d{model!=" in ticket and "> 0.03 and" in ticket
    assert 'ratio_rate3d{model="meta-llama/Llama-3.1-405B-Instruct"} > 0.05 and' in ticket
    for rule in by_name.values():
        assert "by (model" not in rule["expr"], rule  # cluster is kept in aggregations


def test_runbook_base_url_is_configurable_and_checked(tmp_path, capsys) -> None:
    base = "https://wiki.example.org/sre/tuneloop"
    files = render_all(ROOT, base)
    rules = yaml.safe_load(files[alerts.RULES_FILE])
    alert_rules = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    urls = {r["annotations"]["runbook_url"] for r in alert_rules}
    assert f"{base}/TuneloopGpuLost.md" in urls
    assert all(u.startswith(base + "/") for u in urls)
    assert "github.com" not in (ROOT / alerts.RULES_FILE).read_text()
    assert main(["generate", "--check", "--root", str(ROOT), "--runbook-base-url", base]) == 1
    assert main(["generate", "--root", str(tmp_path), "--runbook-base-url", "x y"]) == 2
    with pytest.raises(ValueError, match="runbook-base-url"):
        alerts.runbook_base('https://x/"><script>')


def test_xid_alerts_are_classed_by_severity() -> None:
    rules = yaml.safe_load((ROOT / alerts.RULES_FILE).read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    fatal_labels = by_name["TuneloopGpuXidFatal"]["labels"]
    assert fatal_labels == {"severity": "critical", "xid_class": "fatal"}
    assert by_name["TuneloopGpuXidHardware"]["labels"]["severity"] == "warning"
    assert by_name["TuneloopGpuXidApplication"]["labels"]["severity"] == "info"
    fatal = by_name["TuneloopGpuXidFatal"]["expr"]
    for code in ("48", "79", "94", "95", "119", "120"):
        assert f"|{code}|" in f"|{fatal.split(chr(34))[1]}|", code
    assert "13" not in fatal.split('"')[1].split("|")
    for name in ("TuneloopGpuUncorrectableEccErrors", "TuneloopGpuRowRemapFailed"):
        assert by_name[name]["for"] == "5m"
        assert "by (cluster, node, gpu)" in by_name[name]["expr"]


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
    stems = [dashboards.stem(p) for p in paths]
    assert stems == ["agent", "fleet", "gpu", "network", "numa", "tuner"]
    for path in paths:
        data = json.loads(dashboards.to_json(dashboards.load(path)))
        assert data["uid"] == f"tuneloop-{dashboards.stem(path)}"
        assert data["templating"]["list"][0]["name"] == "datasource"
        assert data["schemaVersion"] >= 39
        panels = [p for p in data["panels"] if p["type"] != "row"]
        assert panels
        for panel in panels:
            where = f"{path.name}: {panel['title']}"
            assert panel["fieldConfig"]["defaults"]["unit"], where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["description"].strip(), where
            assert "maxDataPoints" not in panel, where
            for target in panel["targets"]:
                assert "intervalFactor" not in target, where
                assert target["datasource"] == panel["datasource"], where
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


def test_every_panel_description_comes_from_the_catalog_help_or_is_given() -> None:
    data = json.loads((ROOT / "dashboards" / "gpu.json").read_text())
    by_title = {p["title"]: p for p in data["panels"]}
    assert by_title["PCIe throughput"]["description"].splitlines() == [
        f"{spec.name}: {spec.help}"
        for spec in (
            catalog.get("tuneloop_gpu_pcie_transmit_bytes_per_second"),
            catalog.get("tuneloop_gpu_pcie_receive_bytes_per_second"),
        )
    ]
    with pytest.raises(ValueError, match="give a description"):
        panels.panel("Burn", "short", ("model:x:ratio_rate1h", "{{model}}"))


def test_histograms_draw_as_heatmaps_that_grafana_does_not_migrate() -> None:
    data = json.loads((ROOT / "dashboards" / "fleet.json").read_text())
    heatmaps = [p for p in data["panels"] if p["type"] == "heatmap"]
    assert {p["title"] for p in heatmaps} >= {"TTFT distribution"}
    for p in heatmaps:
        assert p["pluginVersion"] and p["options"]["calculate"] is False
        assert p["targets"][0]["format"] == "heatmap"
        assert "sum by (le)" in p["targets"][0]["expr"]
    with pytest.raises(ValueError, match="not a histogram"):
        panels.heatmap("x", "tuneloop_gpu_power_watts", "")


# Families a fleet dashboard does not draw, and why.
NOT_ON_DASHBOARDS = {
    "loadgen": "the local lab's load generator, which a cluster does not run",
}


def test_every_exported_family_has_a_panel() -> None:
    index = sample_index()
    drawn = set()
    for path in dashboards.sources(ROOT):
        data = json.loads(dashboards.to_json(dashboards.load(path)))
        exprs = [t["expr"] for p in data["panels"] for t in p.get("targets", [])]
        drawn |= {index[n].name for e in exprs for n in metric_names(e) if n in index}
    exported = {
        spec.name
        for area, specs in catalog.AREAS.items()
        if area not in NOT_ON_DASHBOARDS
        for spec in specs
    }
    assert sorted(exported - drawn) == []


def test_family_panels_draw_counters_as_rates_with_the_catalog_unit() -> None:
    energy = catalog.get("tuneloop_gpu_energy_joules_total")
    free = catalog.get("tuneloop_numa_memory_free_bytes")
    assert panels.family_query(energy, 'node="n1"') == (
        'rate(tuneloop_gpu_energy_joules_total{node="n1"}[$__rate_interval])'
    )
    assert panels.family_unit(energy) == "watt"
    assert panels.family_query(free, "") == "tuneloop_numa_memory_free_bytes{}"
    assert panels.family_unit(free) == "bytes"
    with pytest.raises(ValueError, match="at most 26"):
        panels.family_panel("many", [free] * 27, "", "")


def test_runbook_commands_work_as_written() -> None:
    pages = {p.stem: p.read_text() for p in (ROOT / "runbooks").glob("*.md")}
    commands = [
        line
        for text in pages.values()
        for block in text.split("```sh\n")[1:]
        for line in block.split("```")[0].splitlines()
    ]
    for line in commands:
        if "tuneloop-agent scrape" in line or "tuneloop-agent check-config" in line:
            assert "--config /etc/tuneloop/agent.yaml" in line, line
        if "kubectl debug node/" in line:
            assert "--profile=sysadmin" in line, line  # dmesg needs CAP_SYSLOG
        if "tuneloop-agent nodetune" in line:
            assert "--procfs /host/proc" in line, line
        assert "app.kubernetes.io/component=inference" not in line, line
    assert "TuneloopGpuXidFatal" in pages and "TuneloopAgentUnavailable" in pages
