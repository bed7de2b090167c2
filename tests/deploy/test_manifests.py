"""Render every kustomization, validate every object, and hold the manifests to their policy."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.kustomize import K8S_VERSION, kustomize_available, render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))
AGENT_CAPABILITIES = {"NET_ADMIN", "PERFMON"}  # documented in deploy/README.md
TUNER_WRITABLE = {
    ("apps", "deployments/scale"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("", "configmaps"),
    ("", "events"),
    ("coordination.k8s.io", "leases"),
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


pytestmark = pytest.mark.skipif(
    not kustomize_available(), reason="needs kubectl with kustomize v5 to render manifests"
)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {str(d.relative_to(DEPLOY)): render(d) for d in KUSTOMIZATIONS}


def objects(rendered, kind: str) -> list[dict]:
    return [o for docs in rendered.values() for o in docs if o["kind"] == kind]


def pod_specs(rendered, component: str) -> list[dict]:
    specs = []
    for docs in rendered.values():
        for obj in docs:
            spec = obj.get("spec", {})
            template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get(
                "template"
            )
            labels = (template or {}).get("metadata", {}).get("labels", {})
            if template and labels.get("app.kubernetes.io/component") == component:
                specs.append(template["spec"])
    return specs


def test_every_kustomization_renders(rendered):
    assert {"base", "overlays/controller", "overlays/kube-prometheus-stack"} <= set(rendered)
    assert all(rendered.values())


def test_every_object_validates_against_the_kubernetes_schema(rendered):
    custom = {"ServiceMonitor", "PrometheusRule"}
    for name, docs in rendered.items():
        for obj in docs:
            if obj["kind"] in custom:
                assert obj["apiVersion"] == "monitoring.coreos.com/v1", name
                assert obj["spec"], f"{name}: empty {obj['kind']}"
                continue
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {err.message}")


def test_rbac_has_no_wildcards(rendered):
    for kind in ("Role", "ClusterRole"):
        for role in objects(rendered, kind):
            for rule in role["rules"]:
                for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in rule.get(key, []), f"{role['metadata']['name']}: {key}"


def test_tuner_writes_only_what_it_tunes(rendered):
    roles = [
        r for r in objects(rendered, "Role") if r["metadata"]["name"].startswith("tuneloop-tuner")
    ]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            if not WRITE_VERBS & set(rule["verbs"]):
                continue
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    assert (group, resource) in TUNER_WRITABLE, (role["metadata"]["name"], resource)
                    if resource == "configmaps":
                        assert rule.get("resourceNames") == ["tuneloop-node-tuning"]
                    if resource == "leases" and rule["verbs"] != ["create"]:
                        assert rule.get("resourceNames") == ["tuneloop-tuner"]


def test_tuner_pods_meet_pod_security_restricted(rendered):
    specs = pod_specs(rendered, "tuner")
    assert len(specs) >= 2  # the CronJob and the controller
    for spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert not spec.get("hostNetwork") and not spec.get("hostPID")
        assert all("hostPath" not in v for v in spec.get("volumes", []))
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert ctx["readOnlyRootFilesystem"] is True


def test_agent_has_exactly_the_documented_capabilities(rendered):
    specs = pod_specs(rendered, "agent")
    assert specs
    readme = (DEPLOY / "README.md").read_text()
    for spec in specs:
        (container,) = spec["containers"]
        ctx = container["securityContext"]
        assert ctx["privileged"] is False and ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert set(ctx["capabilities"]["add"]) == AGENT_CAPABILITIES
        for capability in AGENT_CAPABILITIES:
            assert f"`{capability}`" in readme, f"{capability} is not documented"
        writable_host = {
            v["hostPath"]["path"]
            for v in spec["volumes"]
            for m in container["volumeMounts"]
            if "hostPath" in v and m["name"] == v["name"] and not m.get("readOnly")
        }
        assert writable_host == {"/proc/sys/net", "/var/lib/tuneloop"}


def test_cronjob_forbids_overlap_and_controller_runs_two_replicas(rendered):
    (cronjob,) = [o for o in rendered["base"] if o["kind"] == "CronJob"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (controller,) = [o for o in rendered["overlays/controller"] if o["kind"] == "Deployment"]
    assert controller["spec"]["replicas"] == 2
    assert not any(o["kind"] == "CronJob" for o in rendered["overlays/controller"])


def test_images_are_pinned_by_tag(rendered):
    for docs in rendered.values():
        for obj in docs:
            for container in re.findall(r"image: (\S+)", yaml.safe_dump(obj)):
                name, _, tag = container.rpartition(":")
                assert name and tag and tag != "latest", container
    # The Dockerfile's base images and users: tests/deploy/test_images.py.


def test_monitoring_overlay_labels_release_and_dashboards(rendered):
    docs = rendered["overlays/kube-prometheus-stack"]
    (monitor,) = [o for o in docs if o["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert not any(o["metadata"]["name"] == "tuneloop-monitoring-settings" for o in docs)
    (policy,) = [o for o in docs if o["kind"] == "NetworkPolicy"]
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9450}]


def test_ops_shell_pod_is_valid_and_restricted():
    (pod,) = yaml.safe_load_all((DEPLOY / "ops" / "tuner-shell.yaml").read_text())
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["spec"]["serviceAccountName"] == "tuneloop-tuner"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"tuneloop-tuner-state"}
