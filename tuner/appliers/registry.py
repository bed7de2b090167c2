"""Appliers by kind, built from an experiment file's options with field-named errors.

``REGISTRY`` maps a kind to a builder ``(options, field) -> Applier``; add a kind with one line.
Kubernetes kinds share ``kubeconfig``, ``context``, ``host`` (an API server URL, no auth; for
local fakes and proxies), ``timeout`` and ``retries``; without any, in-cluster config is tried
first, then the default kubeconfig.

``build_appliers(experiment)`` is the door the tuner's factories use: it builds every applier and
then checks every knob against its applier (``check_knobs``): the target's grammar
(``knobs[i].target``) and the range the system accepts (``knobs[i].bounds``, e.g.
``HAProxy weights are 0..256, got [-50, 100000]``), so nothing the target cannot take survives
loading. Names and addresses sent to HAProxy and nginx are checked by their grammar here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneloop import validation as v
from tuner.appliers.base import Applier, ApplierError, number_text
from tuner.appliers.haproxy import HaproxyApplier
from tuner.appliers.kube_configmap import DATA_KEY, KubeConfigMapApplier
from tuner.appliers.kube_env import KubeEnvApplier
from tuner.appliers.kube_hpa import KubeHpaApplier
from tuner.appliers.kube_scale import KubeScaleApplier
from tuner.appliers.nginx import NginxApplier, check_upstream
from tuner.kube.client import KubeClient

if TYPE_CHECKING:
    from tuner.spec import Experiment, Knob

Builder = Callable[[Mapping[str, Any], str], Applier]


@dataclass(frozen=True)
class KnobProblem:
    """Knob ``index`` cannot be set as declared: ``field`` (e.g. ``knobs[0].bounds``) and why."""

    index: int
    field: str
    reason: str

    @property
    def part(self) -> str:
        """The knob's key at fault: target, bounds, values or applier."""
        return self.field.rsplit(".", 1)[-1]

    def error(self) -> v.ConfigError:
        return v.ConfigError(self.field, self.reason)


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
        checked[str(name)] = v.string(address, v.join(servers_field, str(name)))
    upstream = v.string(options.get("upstream"), v.join(field, "upstream"))
    check_upstream(upstream, checked, field)
    optional = {
        key: _path(options, key, field) for key in ("prefix", "error_log") if key in options
    }
    return NginxApplier(
        _path(options, "upstream_file", field),
        upstream,
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


def build_appliers(experiment: Experiment) -> dict[str, Applier]:
    """Every applier of ``experiment`` (errors name ``appliers.<name>``), knobs checked."""
    appliers = {
        name: build_applier(spec.kind, spec.options, f"appliers.{name}")
        for name, spec in experiment.appliers.items()
    }
    check_knobs(experiment, appliers)
    return appliers


def check_knobs(experiment: Experiment, appliers: Mapping[str, Applier]) -> None:
    """ConfigError at the first knob whose target or bounds its applier cannot take."""
    problems = knob_problems(experiment, appliers)
    if problems:
        raise problems[0].error()


def check_knob_bounds(experiment: Experiment, appliers: Mapping[str, Applier]) -> None:
    """ConfigError at the first knob whose bounds its target's system does not accept."""
    problems = [p for p in knob_problems(experiment, appliers) if p.part in ("bounds", "values")]
    if problems:
        raise problems[0].error()


def knob_problems(experiment: Experiment, appliers: Mapping[str, Applier]) -> list[KnobProblem]:
    """Every knob target or bounds that its applier refuses, in knob order."""
    problems: list[KnobProblem] = []
    numeric: dict[str, dict[str, tuple[float, float]]] = {}
    indexes: dict[tuple[str, str], int] = {}
    for index, knob in enumerate(experiment.knobs):
        field = v.join("knobs", index)
        applier = appliers.get(knob.applier)
        if applier is None:
            problems.append(
                KnobProblem(index, v.join(field, "applier"), f"no applier named {knob.applier!r}")
            )
            continue
        try:
            applier.check_target(knob.target)
        except ApplierError as err:
            problems.append(KnobProblem(index, v.join(field, "target"), str(err)))
            continue
        problem = _range_problem(knob, applier)
        if problem is not None:
            problems.append(KnobProblem(index, v.join(field, problem[0]), problem[1]))
        elif knob.low is not None and knob.high is not None:
            numeric.setdefault(knob.applier, {})[knob.target] = (knob.low, knob.high)
            indexes[(knob.applier, knob.target)] = index
    for name, bounds in numeric.items():
        for target, reason in appliers[name].bounds_conflicts(bounds).items():
            index = indexes[(name, target)]
            problems.append(KnobProblem(index, v.join(v.join("knobs", index), "bounds"), reason))
    return sorted(problems, key=lambda problem: problem.index)


def _range_problem(knob: Knob, applier: Applier) -> tuple[str, str] | None:
    """("bounds" | "values", reason) when the knob's values fall outside what the target takes."""
    accepted = applier.accepted_range(knob.target)
    if accepted is None:
        return None
    if knob.type == "categorical":
        for value in knob.categories:
            try:
                number = float(value)
            except ValueError:
                return "values", f"{accepted.what} are numbers, got {value!r}"
            if not accepted.holds(number, number):
                return "values", f"{accepted.describe()}, got {value!r}"
        return None
    if knob.low is None or knob.high is None or accepted.holds(knob.low, knob.high):
        return None
    shown = f"[{number_text(knob.low)}, {number_text(knob.high)}]"
    return "bounds", f"{accepted.describe()}, got {shown}"
