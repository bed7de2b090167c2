"""Appliers by kind, built from an experiment file's options with field-named errors.

``REGISTRY`` maps a kind to a builder ``(options, field) -> Applier``; add a kind with one line.
Kubernetes kinds share ``kubeconfig``, ``context``, ``host`` (an API server URL, no auth; for
local fakes and proxies), ``timeout`` and ``retries``; without any, in-cluster config is tried
first, then the default kubeconfig.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tuneloop import validation as v
from tuner.appliers.base import Applier, ApplierError
from tuner.appliers.haproxy import HaproxyApplier
from tuner.appliers.kube_configmap import DATA_KEY, KubeConfigMapApplier
from tuner.appliers.kube_env import KubeEnvApplier
from tuner.appliers.kube_hpa import KubeHpaApplier
from tuner.appliers.kube_scale import KubeScaleApplier
from tuner.appliers.nginx import NginxApplier
from tuner.kube.client import KubeClient

Builder = Callable[[Mapping[str, Any], str], Applier]
_KUBE_KEYS = {"kubeconfig", "context", "host", "timeout", "retries"}


def _haproxy(options: Mapping[str, Any], field: str) -> Applier:
    v.no_unknown_keys(options, field, {"address", "timeout"})
    address = v.string(options.get("address"), v.join(field, "address"))
    timeout = v.duration(options.get("timeout", 3.0), v.join(field, "timeout"))
    try:
        return HaproxyApplier(address, timeout_s=timeout)
    except ApplierError as err:
        raise v.ConfigError(v.join(field, "address"), str(err)) from None


def _path(options: Mapping[str, Any], key: str, field: str) -> Path:
    return Path(v.string(options.get(key), v.join(field, key)))


def _nginx(options: Mapping[str, Any], field: str) -> Applier:
    allowed = {"upstream_file", "upstream", "servers", "conf", "pid_file", "nginx_binary"}
    allowed |= {"prefix", "error_log", "verify_url", "reload_timeout"}
    v.no_unknown_keys(options, field, allowed)
    servers_field = v.join(field, "servers")
    servers = v.mapping(options.get("servers"), servers_field)
    if not servers:
        v.fail(servers_field, "must name at least one server: {name: host:port}")
    checked = {}
    for name, address in servers.items():
        text = v.string(address, v.join(servers_field, str(name)))
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit():
            v.fail(v.join(servers_field, str(name)), f"must be host:port, got {text!r}")
        checked[str(name)] = text
    optional = {
        key: _path(options, key, field) for key in ("prefix", "error_log") if key in options
    }
    return NginxApplier(
        _path(options, "upstream_file", field),
        v.string(options.get("upstream"), v.join(field, "upstream")),
        checked,
        _path(options, "conf", field),
        _path(options, "pid_file", field),
        nginx_binary=v.string(options.get("nginx_binary", "nginx"), v.join(field, "nginx_binary")),
        prefix=optional.get("prefix"),
        error_log=optional.get("error_log"),
        verify_url=(
            v.string(options["verify_url"], v.join(field, "verify_url"))
            if "verify_url" in options
            else None
        ),
        reload_timeout_s=v.duration(
            options.get("reload_timeout", 10.0), v.join(field, "reload_timeout")
        ),
    )


def _kube_client(options: Mapping[str, Any], field: str) -> tuple[KubeClient, int]:
    text = {
        key: v.string(options[key], v.join(field, key))
        for key in ("kubeconfig", "context", "host")
        if key in options
    }
    timeout = v.duration(options.get("timeout", 10.0), v.join(field, "timeout"))
    retries = v.integer(options.get("retries", 3), v.join(field, "retries"), minimum=0)
    try:
        client = KubeClient.connect(
            host=text.get("host"),
            kubeconfig=text.get("kubeconfig"),
            context=text.get("context"),
            timeout_s=timeout,
        )
    except Exception as err:  # the config loader raises several types
        raise v.ConfigError(field, f"cannot load Kubernetes client config: {err}") from None
    return client, retries


def _k8s_scale(options: Mapping[str, Any], field: str) -> Applier:
    v.no_unknown_keys(options, field, _KUBE_KEYS)
    client, retries = _kube_client(options, field)
    return KubeScaleApplier(client, retries=retries)


def _k8s_hpa(options: Mapping[str, Any], field: str) -> Applier:
    v.no_unknown_keys(options, field, _KUBE_KEYS)
    client, retries = _kube_client(options, field)
    return KubeHpaApplier(client, retries=retries)


def _k8s_env(options: Mapping[str, Any], field: str) -> Applier:
    v.no_unknown_keys(options, field, _KUBE_KEYS | {"rollout_timeout"})
    rollout = v.duration(options.get("rollout_timeout", 600.0), v.join(field, "rollout_timeout"))
    client, retries = _kube_client(options, field)
    return KubeEnvApplier(client, rollout_timeout_s=rollout, retries=retries)


def _k8s_configmap(options: Mapping[str, Any], field: str) -> Applier:
    v.no_unknown_keys(options, field, _KUBE_KEYS | {"data_key"})
    data_key = v.string(options.get("data_key", DATA_KEY), v.join(field, "data_key"))
    client, retries = _kube_client(options, field)
    return KubeConfigMapApplier(client, data_key=data_key, retries=max(retries, 1))


REGISTRY: dict[str, Builder] = {
    "haproxy": _haproxy,
    "nginx": _nginx,
    "k8s-scale": _k8s_scale,
    "k8s-hpa": _k8s_hpa,
    "k8s-env": _k8s_env,
    "k8s-configmap": _k8s_configmap,
}


def build_applier(kind: str, options: Mapping[str, Any], field: str) -> Applier:
    """An applier of ``kind`` from its options; ConfigError names ``field.<option>``."""
    builder = REGISTRY.get(kind)
    if builder is None:
        v.fail(v.join(field, "kind"), f"must be one of {', '.join(sorted(REGISTRY))}, got {kind!r}")
    return builder(v.mapping(options, field), field)
