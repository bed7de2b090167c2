"""Kubernetes appliers retry 409/429/5xx/dropped connections with backoff; answers are final."""

from __future__ import annotations

import pytest

from tests.fakes.kube_apiserver import FakeApiServer, deployment, hpa
from tests.unit.tuner_doubles import FakeClock
from tuner.appliers.base import ApplierError
from tuner.appliers.kube_configmap import KubeConfigMapApplier
from tuner.appliers.kube_env import KubeEnvApplier
from tuner.appliers.kube_hpa import KubeHpaApplier
from tuner.appliers.kube_scale import KubeScaleApplier
from tuner.kube.client import KubeClient
from tuner.kube.ops import CAP_S


@pytest.fixture
def api():
    with FakeApiServer(rollout_delay_s=None) as server:
        server.add("deployments", deployment("ml", "web", replicas=2, env={"BATCH": "16"}))
        server.add("horizontalpodautoscalers", hpa("ml", "web-hpa", "other", 1, 4, 70))
        yield server


@pytest.fixture
def client(api):
    return KubeClient.connect(host=api.url, timeout_s=2.0)


def gets(api, resource):
    return [r for r in api.requests if r[0] == "GET" and resource in r[1]]


@pytest.mark.parametrize("code", [429, 500, 503])
def test_reads_ride_out_throttling_and_server_errors(api, client, code):
    clock = FakeClock()
    api.fail(code, times=2, method="GET", resource="deployments")
    assert KubeScaleApplier(client, retries=3, clock=clock).read(["ml/web"]) == {"ml/web": 2}
    assert len(gets(api, "/scale")) == 3
    assert len(clock.slept) == 2
    assert all(0 <= wait <= CAP_S for wait in clock.slept)


def test_dropped_connections_are_retried_for_reads_and_writes(api, client):
    clock = FakeClock()
    scale = KubeScaleApplier(client, retries=3, clock=clock)
    api.drop(times=1, method="GET", resource="deployments")
    api.drop(times=1, method="PUT", resource="deployments")
    scale.apply({"ml/web": 4})
    assert api.get("deployments", "ml", "web")["spec"]["replicas"] == 4
    assert len(clock.slept) == 2


def test_conflicts_and_throttled_writes_are_retried_with_backoff(api, client):
    clock = FakeClock()
    api.interfere("deployments", "ml", "web", times=1)
    api.fail(429, times=1, method="PUT", resource="deployments")
    KubeScaleApplier(client, retries=3, clock=clock).apply({"ml/web": 5})
    assert api.get("deployments", "ml", "web")["spec"]["replicas"] == 5
    assert len(clock.slept) == 2


def test_retries_end_with_the_servers_last_answer(api, client):
    clock = FakeClock()
    api.fail(503, times=10, method="GET", resource="deployments")
    with pytest.raises(ApplierError, match=r"503 InternalError: injected 503 \(after 3 attempts\)"):
        KubeScaleApplier(client, retries=2, clock=clock).read(["ml/web"])
    assert len(gets(api, "/scale")) == 3
    assert len(clock.slept) == 2


def test_answers_are_not_retried(api, client):
    clock = FakeClock()
    api.deny("get", "deployments")
    with pytest.raises(ApplierError, match=r"cannot get resource"):
        KubeScaleApplier(client, retries=3, clock=clock).read(["ml/web"])
    with pytest.raises(ApplierError, match=r"not found"):
        KubeHpaApplier(client, retries=3, clock=clock).read(["ml/nope:max"])
    assert clock.slept == []
    assert len(gets(api, "deployments")) == 1


def test_every_kube_applier_retries(api, client):
    clock = FakeClock()
    api.fail(500, times=1, method="GET", resource="horizontalpodautoscalers")
    assert KubeHpaApplier(client, clock=clock).read(["ml/web-hpa:max"]) == {"ml/web-hpa:max": 4}
    api.fail(500, times=1, method="GET", resource="deployments")
    env = KubeEnvApplier(client, clock=clock)
    assert env.read(["ml/web/server:BATCH"]) == {"ml/web/server:BATCH": "16"}
    api.fail(500, times=1, method="GET", resource="configmaps")
    api.fail(429, times=1, method="POST", resource="configmaps")
    configmaps = KubeConfigMapApplier(client, clock=clock)
    configmaps.apply({"ml/nodetune:net.core.rmem_max": 4194304})
    assert configmaps.read(["ml/nodetune:net.core.rmem_max"]) == {
        "ml/nodetune:net.core.rmem_max": "4194304"
    }
    assert len(clock.slept) == 4
