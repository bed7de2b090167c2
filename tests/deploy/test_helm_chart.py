"""The Helm chart: lint, render under several value sets, validate every object, match kustomize.

Rendering and linting use Helm's own Go SDK (Helm v4, through the ``helm-python-sdk`` wheel of
the ``dev`` extra): the same template engine, schema validation and lint rules as the ``helm``
binary, offline. Without that wheel these tests are skipped; test_chart_files.py (the chart's
copied files are fresh) runs regardless.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agent.config import load_config
from tests.deploy.helm_chart import CHART, find, render
from tests.deploy.kustomize import K8S_VERSION, kustomize_available
from tests.deploy.kustomize import render as kustomize

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
HELM_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/part-of",
}
GPU_LABELS = {
    "gke": "cloud.google.com/gke-accelerator",
    "eks": "k8s.amazonaws.com/accelerator",
    "aks": "kubernetes.azure.com/accelerator",
}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "controller": {"tuner": {"mode": "controller"}},
    "kube-prometheus-stack": {"monitoring": {"enabled": True}},
    "controller-monitored-proxied-any-gpu": {
        "tuner": {"mode": "controller", "targetNamespaces": ["inference", "batch"]},
        "monitoring": {"enabled": True, "release": "kps"},
        "agent": {
            "nodeSelection": "any-gpu",
            "kubeRbacProxy": {"enabled": True},
            "priorityClass": {"create": False, "name": "system-node-critical"},
        },
    },
    "gke-no-node-tuning-tls": {
        "agent": {
            "nodeSelection": "gke",
            "nodeTuning": {"enabled": False},
            "runtimeClassName": "nvidia",
            "webConfig": {"secretName": "tuneloop-agent-tls"},
        },
        "monitoring": {"enabled": True},
    },
    "eks": {"agent": {"nodeSelection": "eks"}, "namespaces": {"create": False}},
    "aks-own-affinity": {
        "agent": {
            "nodeSelection": "aks",
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "pool", "operator": "In", "values": ["a"]}
                                ]
                            }
                        ]
                    }
                }
            },
            "nodeSelector": {"tier": "serving"},
        }
    },
}


helm = pytest.importorskip("helm_python", reason="needs helm-python-sdk (the dev extra)")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(values) for name, values in VALUE_SETS.items()}


def agent_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (daemonset,) = find(docs, "DaemonSet")
    spec: dict[str, Any] = daemonset["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_is_clean(name: str) -> None:
    report = helm.lint(str(CHART), VALUE_SETS[name], strict=True, kube_version="v1.33.0")
    assert report["errors"] == []
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert serious == [], serious


def test_every_rendered_object_validates_strictly(rendered) -> None:
    for name, docs in rendered.items():
        assert docs, name
        for obj in docs:
            if obj["kind"] in CUSTOM_KINDS:
                assert obj["apiVersion"] == "monitoring.coreos.com/v1", name
                assert obj["spec"], f"{name}: empty {obj['kind']}"
                continue
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {err.message}")


def normalise(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    """Objects by (kind, namespace, name), without Helm's bookkeeping or kustomize's hashes."""
    text = yaml.safe_dump_all(docs)
    text = re.sub(r"\b(tuneloop-(?:agent|tuner)-config)-[a-z0-9]{10}\b", r"\1", text)
    result: dict[tuple[str, str, str], Any] = {}
    for obj in yaml.safe_load_all(text):
        for meta in (obj["metadata"], obj.get("spec", {}).get("template", {}).get("metadata")):
            if not meta:
                continue
            labels = {k: v for k, v in meta.get("labels", {}).items() if k not in HELM_LABELS}
            notes = {
                k: v
                for k, v in meta.get("annotations", {}).items()
                if not k.startswith(("checksum/", "helm.sh/"))
            }
            meta.pop("labels", None)
            meta.pop("annotations", None)
            if labels:
                meta["labels"] = labels
            if notes:
                meta["annotations"] = notes
        job = obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {})
        job.get("metadata", {}).pop("annotations", None)
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        result[key] = obj
    return result


@pytest.mark.skipif(not kustomize_available(), reason="needs kubectl with kustomize v5")
@pytest.mark.parametrize(
    ("value_set", "kustomization"),
    [
        ("defaults", "base"),
        ("controller", "overlays/controller"),
        ("kube-prometheus-stack", "overlays/kube-prometheus-stack"),
    ],
)
def test_helm_and_kustomize_make_the_same_objects(rendered, value_set, kustomization) -> None:
    from_helm = normalise(rendered[value_set])
    from_kustomize = normalise(kustomize(DEPLOY / kustomization))
    assert sorted(from_helm) == sorted(from_kustomize)
    for key, obj in from_kustomize.items():
        assert from_helm[key] == obj, key


def test_node_selection_presets(rendered) -> None:
    assert agent_spec(rendered["defaults"])["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert "affinity" not in agent_spec(rendered["defaults"])
    for preset, value_set in (("gke", "gke-no-node-tuning-tls"), ("eks", "eks")):
        spec = agent_spec(rendered[value_set])
        assert "nodeSelector" not in spec
        (term,) = spec["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert term == {"matchExpressions": [{"key": GPU_LABELS[preset], "operator": "Exists"}]}
    spec = agent_spec(rendered["controller-monitored-proxied-any-gpu"])
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    keys = {t["matchExpressions"][0]["key"] for t in terms}
    assert keys == {"nvidia.com/gpu.present", *GPU_LABELS.values()} and len(terms) == 4
    own = agent_spec(rendered["aks-own-affinity"])
    assert own["affinity"] == VALUE_SETS["aks-own-affinity"]["agent"]["affinity"]
    assert own["nodeSelector"] == {"tier": "serving"}


def test_agent_without_node_tuning_is_not_root_and_has_no_writable_host_path(
    rendered, tmp_path: Path, monkeypatch
) -> None:
    docs = rendered["gke-no-node-tuning-tls"]
    spec = agent_spec(docs)
    assert spec["runtimeClassName"] == "nvidia"
    (container,) = spec["containers"]
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 65532
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    host = {v["name"] for v in spec["volumes"] if "hostPath" in v}
    writable = {m["name"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert host & writable == set()
    assert "--web-config-file=/etc/tuneloop-web/web-config.yml" in container["args"]
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert not find(docs, "ConfigMap", "tuneloop-node-tuning")
    (config_map,) = find(docs, "ConfigMap", "tuneloop-agent-config")
    (config_file := tmp_path / "agent.yaml").write_text(config_map["data"]["agent.yaml"])
    monkeypatch.setenv("NODE_NAME", "gpu-node-1")
    config = load_config(config_file)  # the agent's own validator
    assert config.nodetune.desired is None and not config.collectors["nodetune"].enabled
    (monitor,) = find(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["scheme"] == "https"


def test_kube_rbac_proxy_fronts_the_agent(rendered) -> None:
    docs = rendered["controller-monitored-proxied-any-gpu"]
    spec = agent_spec(docs)
    agent, proxy = spec["containers"]
    assert "--listen=127.0.0.1:9450" in agent["args"] and "ports" not in agent
    assert proxy["name"] == "kube-rbac-proxy"
    assert "--upstream=http://127.0.0.1:9450/" in proxy["args"]
    assert proxy["ports"] == [{"name": "https", "containerPort": 9450, "protocol": "TCP"}]
    (role,) = find(docs, "ClusterRole", "tuneloop-agent")
    reviews = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"tokenreviews", "subjectaccessreviews"} <= reviews
    (monitor,) = find(docs, "ServiceMonitor", "tuneloop-agent")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "https" and endpoint["scheme"] == "https"
    assert endpoint["bearerTokenFile"].endswith("serviceaccount/token")
    assert spec["priorityClassName"] == "system-node-critical"
    assert not find(docs, "PriorityClass")
    assert {r["metadata"]["namespace"] for r in find(docs, "Role", "tuneloop-tuner")} == {
        "inference",
        "batch",
    }


def test_tuner_is_scraped_in_controller_mode_only(rendered) -> None:
    monitored = rendered["controller-monitored-proxied-any-gpu"]
    (monitor,) = find(monitored, "ServiceMonitor", "tuneloop-tuner")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    (service,) = find(monitored, "Service", "tuneloop-tuner")
    controller = yaml.safe_load((CHART / "files" / "controller.yaml").read_text())
    assert service["spec"]["ports"][0]["port"] == controller["metrics_port"] == 9451
    (claim,) = find(monitored, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    cronjob_only = rendered["kube-prometheus-stack"]
    assert not find(cronjob_only, "ServiceMonitor", "tuneloop-tuner")
    assert find(cronjob_only, "CronJob") and not find(cronjob_only, "Deployment")


def test_monitoring_objects_come_from_the_generated_files(rendered) -> None:
    docs = rendered["kube-prometheus-stack"]
    for name, file in (
        ("tuneloop", "prometheusrule.yaml"),
        ("tuneloop-dcgm-compat", "prometheusrule-dcgm-compat.yaml"),
    ):
        (rule,) = find(docs, "PrometheusRule", name)
        generated = yaml.safe_load((CHART / "files" / file).read_text())
        assert rule["spec"] == generated["spec"]
        assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dashboards = {d["metadata"]["name"]: d for d in find(docs, "ConfigMap")}
    for path in sorted((CHART / "files" / "dashboards").glob("*.json")):
        config_map = dashboards[f"tuneloop-dashboard-{path.stem}"]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["data"] == {path.name: path.read_text()}


def test_dcgm_compat_rules_can_be_left_out() -> None:
    values = {"monitoring": {"enabled": True, "prometheusRule": {"dcgmCompat": {"enabled": False}}}}
    rules = find(render(values), "PrometheusRule")
    assert [r["metadata"]["name"] for r in rules] == ["tuneloop"]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"agent": {"nodeSelection": "gpu"}}, "/agent/nodeSelection"),
        ({"tuner": {"mode": "daemon"}}, "/tuner/mode"),
        ({"agent": {"image": {"tag": "latest"}}}, "/agent/image/tag"),
        ({"agent": {"nodeTuning": {"enable": True}}}, "enable"),
        ({"tuner": {"state": {"size": "1G"}}}, "/tuner/state/size"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(helm.HelmError, match=re.escape(field)):
        render(values)
