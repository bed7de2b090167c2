"""Kubernetes appliers through the real kubernetes client against the fake API server."""

from __future__ import annotations

import pytest
import yaml

from tests.fakes.kube_apiserver import FakeApiServer, deployment, hpa
from tests.unit.tuner_doubles import FakeClock
from tuner.appliers.base import ApplierError
from tuner.appliers.kube_configmap import KubeConfigMapApplier
from tuner.appliers.kube_env import KubeEnvApplier
from tuner.appliers.kube_hpa import KubeHpaApplier
from tuner.appliers.kube_scale import KubeScaleApplier
from tuner.kube.client import Conflict, Forbidden, KubeClient, KubeTimeout, NotFound


@pytest.fixture
def api():
    with FakeApiServer(rollout_delay_s=0.3) as server:
        server.add("deployments", deployment("ml", "web", replicas=2, env={"BATCH": "16"}))
        server.add("deployments", deployment("ml", "llm", args=["--max-num-seqs", "64"]))
        server.add("horizontalpodautoscalers", hpa("ml", "llm-hpa", "llm", 1, 4, 70))
        yield server


@pytest.fixture
def client(api):
    return KubeClient.connect(host=api.url, timeout_s=2.0)


# --- the client wrapper's errors ---------------------------------------------------------------


def test_client_translates_api_errors(api, client):
    with pytest.raises(NotFound, match=r'deployments.apps "nope" not found'):
        client.get_deployment("ml", "nope")
    stale = client.get_scale("ml", "web")
    client.replace_scale("ml", "web", stale)
    with pytest.raises(Conflict, match=r"the object has been modified"):
        client.replace_scale("ml", "web", stale)
    api.deny("get", "deployments")
    with pytest.raises(Forbidden, match=r"cannot get resource"):
        client.get_deployment("ml", "web")


def test_client_timeout(api):
    api.slow(1.0, "GET", "deployments")
    fast = KubeClient.connect(host=api.url, timeout_s=0.2)
    with pytest.raises(KubeTimeout, match=r"no answer within 0.2s"):
        fast.get_deployment("ml", "web")


# --- k8s-scale ---------------------------------------------------------------------------------


def test_scale_apply_verify_rollback(api, client):
    scale = KubeScaleApplier(client)
    snap = scale.snapshot(["ml/web"])
    assert snap == {"ml/web": 2}
    scale.apply({"ml/web": 5})
    scale.verify({"ml/web": 5})
    assert api.get("deployments", "ml", "web")["spec"]["replicas"] == 5
    writes = len(api.writes())
    scale.apply({"ml/web": 5})  # idempotent: no write
    assert len(api.writes()) == writes
    scale.rollback(snap)
    assert api.get("deployments", "ml", "web")["spec"]["replicas"] == 2


def test_scale_retries_a_stale_resource_version(api, client):
    api.interfere("deployments", "ml", "web", times=2)
    KubeScaleApplier(client, retries=3, clock=FakeClock()).apply({"ml/web": 3})
    assert api.get("deployments", "ml", "web")["spec"]["replicas"] == 3
    api.interfere("deployments", "ml", "web", times=5)
    with pytest.raises(ApplierError, match=r"still conflicting after 2 attempts"):
        KubeScaleApplier(client, retries=1, clock=FakeClock()).apply({"ml/web": 4})


def test_scale_refuses_to_fight_an_hpa(api, client):
    with pytest.raises(ApplierError, match=r"HorizontalPodAutoscaler ml/llm-hpa.*k8s-hpa"):
        KubeScaleApplier(client).apply({"ml/llm": 3})
    assert api.get("deployments", "ml", "llm")["spec"]["replicas"] == 2


def test_scale_refuses_a_controlled_deployment(api, client):
    owned = deployment("ml", "op")
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "x/v1",
            "kind": "InferenceService",
            "name": "op",
            "uid": "u1",
            "controller": True,
        }
    ]
    api.add("deployments", owned)
    with pytest.raises(ApplierError, match=r"controlled by InferenceService op"):
        KubeScaleApplier(client).apply({"ml/op": 4})


def test_scale_refuses_a_server_side_apply_owner(api, client):
    applied = deployment("ml", "gitops")
    applied["metadata"]["managedFields"] = [
        {
            "manager": "argocd",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }
    ]
    api.add("deployments", applied)
    with pytest.raises(ApplierError, match=r"'argocd' owns spec.replicas"):
        KubeScaleApplier(client).apply({"ml/gitops": 4})


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_scale_rejects_bad_values(client, bad):
    with pytest.raises(ApplierError, match=r"must be an integer"):
        KubeScaleApplier(client).apply({"ml/web": bad})


def test_scale_forbidden_and_missing(api, client):
    with pytest.raises(ApplierError, match=r"not found"):
        KubeScaleApplier(client).read(["ml/nope"])
    with pytest.raises(ApplierError, match=r"namespace/deployment"):
        KubeScaleApplier(client).read(["web"])
    api.deny("update", "deployments", "ml")
    with pytest.raises(ApplierError, match=r"Forbidden"):
        KubeScaleApplier(client).apply({"ml/web": 3})


# --- k8s-hpa -----------------------------------------------------------------------------------


def test_hpa_bounds_and_target(api, client):
    hpas = KubeHpaApplier(client)
    targets = ["ml/llm-hpa:min", "ml/llm-hpa:max", "ml/llm-hpa:target_cpu"]
    snap = hpas.snapshot(targets)
    assert snap == {"ml/llm-hpa:min": 1, "ml/llm-hpa:max": 4, "ml/llm-hpa:target_cpu": 70}
    hpas.apply({"ml/llm-hpa:min": 6, "ml/llm-hpa:max": 8, "ml/llm-hpa:target_cpu": 55})
    hpas.verify({"ml/llm-hpa:min": 6, "ml/llm-hpa:max": 8, "ml/llm-hpa:target_cpu": 55})
    stored = api.get("horizontalpodautoscalers", "ml", "llm-hpa")["spec"]
    assert stored["metrics"][0]["resource"]["target"]["averageUtilization"] == 55
    hpas.rollback(snap)
    assert hpas.read(targets) == snap


def test_hpa_min_above_max_is_refused(api, client):
    with pytest.raises(ApplierError, match=r"min 9 would exceed max 4"):
        KubeHpaApplier(client).apply({"ml/llm-hpa:min": 9})
    with pytest.raises(ApplierError, match=r"field must be one of"):
        KubeHpaApplier(client).read(["ml/llm-hpa:replicas"])


# --- k8s-env -----------------------------------------------------------------------------------


def test_env_change_waits_for_the_rollout_and_rolls_back(api, client):
    env = KubeEnvApplier(client, rollout_timeout_s=5, poll_s=0.05)
    snap = env.snapshot(["ml/web/server:BATCH", "ml/web/server:NEW"])
    assert snap == {"ml/web/server:BATCH": "16", "ml/web/server:NEW": None}
    env.apply({"ml/web/server:BATCH": 32, "ml/web/server:NEW": "x"})
    stored = api.get("deployments", "ml", "web")
    assert stored["status"]["observedGeneration"] == stored["metadata"]["generation"] == 2
    assert stored["status"]["updatedReplicas"] == 2
    env.verify({"ml/web/server:BATCH": 32})
    env.rollback(snap)
    container = api.get("deployments", "ml", "web")["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "BATCH", "value": "16"}]


def test_env_flag_in_args(api, client):
    env = KubeEnvApplier(client, rollout_timeout_s=5, poll_s=0.05)
    assert env.read(["ml/llm/server:--max-num-seqs"]) == {"ml/llm/server:--max-num-seqs": "64"}
    env.apply({"ml/llm/server:--max-num-seqs": 128, "ml/llm/server:--new-flag": "on"})
    container = api.get("deployments", "ml", "llm")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--max-num-seqs", "128", "--new-flag=on"]


def test_env_stuck_rollout_times_out_with_status(api, client):
    api.rollout_delay_s = None  # the rollout never finishes on its own
    env = KubeEnvApplier(client, rollout_timeout_s=0.3, poll_s=0.05)
    with pytest.raises(ApplierError, match=r"rollout did not finish within 0.3s \(.*0/2 updated"):
        env.apply({"ml/web/server:BATCH": 8})
    api.complete_rollout("ml", "web")
    env.apply({"ml/web/server:BATCH": 8})  # already written; now the rollout is done


def test_env_refuses_value_from_and_unknown_container(api, client):
    from_ref = deployment("ml", "ref")
    from_ref["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "BATCH", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
    ]
    api.add("deployments", from_ref)
    env = KubeEnvApplier(client, rollout_timeout_s=1, poll_s=0.05)
    with pytest.raises(ApplierError, match=r"valueFrom"):
        env.apply({"ml/ref/server:BATCH": 4})
    with pytest.raises(ApplierError, match=r"no container 'sidecar'"):
        env.read(["ml/web/sidecar:BATCH"])


# --- k8s-configmap -----------------------------------------------------------------------------


def desired(api, name="nodetune"):
    return yaml.safe_load(api.get("configmaps", "ml", name)["data"]["desired.yaml"])


def test_configmap_created_then_generation_bumped(api, client):
    cms = KubeConfigMapApplier(client)
    snap = cms.snapshot(["ml/nodetune:net.core.rmem_max"])
    assert snap == {"ml/nodetune:net.core.rmem_max": None}
    cms.apply({"ml/nodetune:net.core.rmem_max": 16777216})
    assert desired(api) == {"generation": 1, "sysctls": {"net.core.rmem_max": "16777216"}}
    cms.apply({"ml/nodetune:net.ipv4.tcp_rmem": "4096 87380 16777216"})
    assert desired(api)["generation"] == 2
    cms.apply({"ml/nodetune:net.ipv4.tcp_rmem": "4096 87380 16777216"})  # no change, no bump
    assert desired(api)["generation"] == 2
    cms.verify({"ml/nodetune:net.core.rmem_max": 16777216})
    cms.rollback(snap)
    assert desired(api) == {
        "generation": 3,
        "sysctls": {"net.ipv4.tcp_rmem": "4096 87380 16777216"},
    }


def test_configmap_retries_conflicts_and_keeps_other_data(api, client):
    api.add(
        "configmaps",
        {
            "metadata": {"name": "nodetune", "namespace": "ml"},
            "data": {
                "README": "managed by tuneloop",
                "desired.yaml": "generation: 7\nsysctls: {a.b: '1'}\n",
            },
        },
    )
    api.interfere("configmaps", "ml", "nodetune", times=3)
    KubeConfigMapApplier(client, retries=5, clock=FakeClock()).apply({"ml/nodetune:a.b": "2"})
    stored = api.get("configmaps", "ml", "nodetune")
    assert stored["data"]["README"] == "managed by tuneloop"
    assert desired(api) == {"generation": 8, "sysctls": {"a.b": "2"}}


def test_configmap_errors_are_named(api, client):
    api.add(
        "configmaps",
        {
            "metadata": {"name": "broken", "namespace": "ml"},
            "data": {"desired.yaml": "generation: [\n"},
        },
    )
    cms = KubeConfigMapApplier(client)
    with pytest.raises(ApplierError, match=r"ml/broken desired.yaml: not YAML"):
        cms.read(["ml/broken:a.b"])
    api.deny("get", "configmaps")
    with pytest.raises(ApplierError, match=r"Forbidden"):
        cms.read(["ml/nodetune:a.b"])
    api.clear_faults()
    api.slow(1.0, "GET", "configmaps")
    slow = KubeConfigMapApplier(
        KubeClient.connect(host=api.url, timeout_s=0.2), retries=1, clock=FakeClock()
    )
    with pytest.raises(ApplierError, match=r"no answer"):
        slow.read(["ml/nodetune:a.b"])
