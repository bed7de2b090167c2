"""build_applier: every kind builds from options; bad options name their field."""

from __future__ import annotations

import pytest

from tests.fakes.kube_apiserver import FakeApiServer, deployment
from tuneloop.validation import ConfigError
from tuner.appliers.haproxy import HaproxyApplier
from tuner.appliers.kube_configmap import KubeConfigMapApplier
from tuner.appliers.kube_env import KubeEnvApplier
from tuner.appliers.kube_scale import KubeScaleApplier
from tuner.appliers.nginx import NginxApplier
from tuner.appliers.registry import REGISTRY, build_applier

NGINX = {
    "upstream_file": "up.conf",
    "upstream": "app",
    "servers": {"s1": "127.0.0.1:8001"},
    "conf": "nginx.conf",
    "pid_file": "nginx.pid",
}


def test_kinds():
    assert set(REGISTRY) >= {"haproxy", "nginx", "k8s-scale", "k8s-hpa", "k8s-env", "k8s-configmap"}


def test_builds_balancers():
    haproxy = build_applier(
        "haproxy", {"address": "127.0.0.1:9999", "timeout": "2s"}, "appliers.lb"
    )
    assert isinstance(haproxy, HaproxyApplier)
    assert haproxy.timeout_s == 2.0
    assert isinstance(build_applier("nginx", NGINX, "appliers.ng"), NginxApplier)


def test_kube_kinds_talk_to_the_configured_host():
    with FakeApiServer() as api:
        api.add("deployments", deployment("ml", "web", replicas=3))
        scale = build_applier("k8s-scale", {"host": api.url, "retries": 1}, "appliers.s")
        assert isinstance(scale, KubeScaleApplier)
        assert scale.read(["ml/web"]) == {"ml/web": 3}
        env = build_applier("k8s-env", {"host": api.url, "rollout_timeout": "2m"}, "appliers.e")
        assert isinstance(env, KubeEnvApplier)
        assert env.rollout_timeout_s == 120
        cm = build_applier("k8s-configmap", {"host": api.url, "data_key": "d.yaml"}, "appliers.c")
        assert isinstance(cm, KubeConfigMapApplier)
        assert cm.data_key == "d.yaml"


@pytest.mark.parametrize(
    ("kind", "options", "field", "reason"),
    [
        ("haproxy", {}, "appliers.x.address", "non-empty string"),
        ("haproxy", {"address": "nohost"}, "appliers.x.address", "host:port"),
        ("haproxy", {"address": "h:1", "tmeout": 1}, "appliers.x.tmeout", "unknown field"),
        ("nginx", {**NGINX, "servers": {}}, "appliers.x.servers", "at least one"),
        ("nginx", {**NGINX, "servers": {"s1": "nope"}}, "appliers.x.servers.s1", "host:port"),
        ("nginx", {**NGINX, "servers": ["a"]}, "appliers.x.servers", "mapping"),
        ("k8s-scale", {"retries": -1}, "appliers.x.retries", ">= 0"),
        ("k8s-env", {"rollout_timeout": "soon"}, "appliers.x.rollout_timeout", "duration"),
        ("k8s-hpa", {"replicas": 2}, "appliers.x.replicas", "unknown field"),
        ("k8s-scale", {"kubeconfig": "/nonexistent/kubeconfig"}, "appliers.x", "Kubernetes"),
        ("balancer", {}, "appliers.x.kind", "must be one of"),
    ],
)
def test_bad_options_name_the_field(kind, options, field, reason):
    with pytest.raises(ConfigError) as err:
        build_applier(kind, options, "appliers.x")
    assert err.value.field == field
    assert reason in err.value.reason
