"""Container env vars and command-line flags (e.g. a batch size) of a Deployment.

Targets are ``namespace/deployment/container:NAME``: ``NAME`` is an env var, or, when it starts
with ``-``, a flag in the container's args (``--max-num-seqs=64`` or ``--max-num-seqs 64``; the
form already in use is kept, new flags are appended as ``--flag=value``). Values are written as
strings and compared as strings. A change is a pod-template update, so apply waits for the
rolling update to finish (``rollout_timeout_s``). A snapshot records an unset variable or flag as
None and rollback removes it again. Env vars set from a ConfigMap or Secret are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from tuneloop.clock import Clock, RealClock
from tuner.appliers.base import ApplierError, KnobClass, TextApplier, VerifyError
from tuner.kube.client import KubeClient, Obj
from tuner.kube.ops import (
    read_with_retry,
    rollout_done,
    split,
    update_with_retry,
    wait_for_rollout,
)

SHAPE = "namespace/deployment/container:NAME"


def _split(target: str) -> tuple[str, str, str, str]:
    (namespace, name, container), key = split("k8s-env", target, 3, True, SHAPE)
    return namespace, name, container, key


def _container(deployment: Obj, name: str, target: str) -> dict[str, Any]:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        if container["name"] == name:
            return container
    raise ApplierError(f"k8s-env: {target}: no container {name!r} in the pod template")


def get_value(container: dict[str, Any], key: str, target: str) -> str | None:
    """The current string value of an env var or flag, or None when unset."""
    if key.startswith("-"):
        args = container.get("args") or []
        for i, arg in enumerate(args):
            if arg.startswith(key + "="):
                return str(arg.split("=", 1)[1])
            if arg == key:
                return str(args[i + 1]) if i + 1 < len(args) else ""
        return None
    for env in container.get("env") or []:
        if env["name"] == key:
            if env.get("valueFrom"):
                raise ApplierError(
                    f"k8s-env: {target}: set from a reference (valueFrom); refusing to override it"
                )
            return str(env.get("value", ""))
    return None


def set_value(container: dict[str, Any], key: str, value: str | None) -> None:
    """Set (or with None, remove) an env var or flag in place."""
    if key.startswith("-"):
        args = list(container.get("args") or [])
        for i, arg in enumerate(args):
            if arg.startswith(key + "="):
                args[i : i + 1] = [] if value is None else [f"{key}={value}"]
                break
            if arg == key:
                args[i : i + 2] = [] if value is None else [key, value]
                break
        else:
            if value is not None:
                args.append(f"{key}={value}")
        container["args"] = args
        return
    envs = [e for e in container.get("env") or [] if e["name"] != key or value is not None]
    for env in envs:
        if env["name"] == key:
            env["value"] = value
            break
    else:
        if value is not None:
            envs.append({"name": key, "value": value})
    container["env"] = envs


class KubeEnvApplier(TextApplier):
    """Env vars and flags of containers in Deployments, applied by a rolling update."""

    kind = "k8s-env"
    value_kind = "a number or string"
    knob_class = KnobClass.COLD

    def __init__(
        self,
        client: KubeClient,
        *,
        rollout_timeout_s: float = 600.0,
        retries: int = 3,
        clock: Clock | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.client = client
        self.rollout_timeout_s = rollout_timeout_s
        self.retries = retries
        self.clock = clock or RealClock()
        self.poll_s = poll_s

    def check_target(self, target: str) -> None:
        _split(target)

    def _values(self, targets: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for target in targets:
            namespace, name, container, key = _split(target)
            deployment = read_with_retry(
                f"k8s-env: {target}",
                partial(self.client.get_deployment, namespace, name),
                self.retries,
                self.clock,
            )
            out[target] = get_value(_container(deployment, container, target), key, target)
        return out

    def apply(self, desired: Mapping[str, Any]) -> None:
        by_deployment: dict[tuple[str, str], list[tuple[str, str, str | None]]] = {}
        for target, value in desired.items():
            namespace, name, container, key = _split(target)
            by_deployment.setdefault((namespace, name), []).append(
                (container, key, self.text(value))
            )
        for (namespace, name), changes in by_deployment.items():

            def mutate(
                deployment: Obj, changes: list[Any] = changes, where: str = f"{namespace}/{name}"
            ) -> bool:
                changed = False
                for container_name, key, value in changes:
                    target = f"{where}/{container_name}:{key}"
                    container = _container(deployment, container_name, target)
                    if get_value(container, key, target) != value:
                        set_value(container, key, value)
                        changed = True
                return changed

            written = update_with_retry(
                f"k8s-env: {namespace}/{name}",
                partial(self.client.get_deployment, namespace, name),
                mutate,
                partial(self.client.replace_deployment, namespace, name),
                self.retries,
                self.clock,
            )
            if written is not None or not self._settled(namespace, name):
                wait_for_rollout(
                    partial(self.client.get_deployment, namespace, name),
                    f"k8s-env: deployment {namespace}/{name}",
                    self.rollout_timeout_s,
                    self.clock,
                    self.poll_s,
                    self.retries,
                )

    def _settled(self, namespace: str, name: str) -> bool:
        deployment = read_with_retry(
            f"k8s-env: deployment {namespace}/{name}",
            partial(self.client.get_deployment, namespace, name),
            self.retries,
            self.clock,
        )
        return rollout_done(deployment)[0]

    def rollback(self, snapshot: Mapping[str, Any]) -> None:
        self.apply(snapshot)
        current = self._values(list(snapshot))
        if any(current[t] != self.text(v) for t, v in snapshot.items()):
            raise VerifyError(f"k8s-env: rollback did not restore {dict(snapshot)!r}: {current!r}")
