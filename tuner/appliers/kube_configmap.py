"""Node-tuning desired state in a ConfigMap; targets are ``namespace/configmap:sysctl.key``.

The ConfigMap's ``desired.yaml`` holds ``{generation: N, sysctls: {key: value}}``, the file the
node agent's reconciler reads (projected into its pod). Every change bumps the generation so the
agents apply it. Writes carry the resourceVersion read and retry on 409 (the ConfigMap is shared
with people and other tools); a missing ConfigMap is created at generation 1. Values are sysctl
strings (``"4096 87380 16777216"``); numbers are written as their decimal text. An unset key
snapshots as None and rollback removes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import yaml

from tuneloop.clock import Clock
from tuner.appliers.base import ApplierError, KnobClass, TextApplier
from tuner.kube.client import Conflict, KubeClient, KubeError, NotFound, Obj
from tuner.kube.ops import call_with_retry, split, update_with_retry

DATA_KEY = "desired.yaml"


def _split(target: str) -> tuple[str, str, str]:
    (namespace, name), key = split("k8s-configmap", target, 2, True, "namespace/configmap:key")
    return namespace, name, key


def load(configmap: Obj, data_key: str, where: str) -> dict[str, Any]:
    """The desired state held in ``configmap`` (an empty one when the key is absent)."""
    text = (configmap.get("data") or {}).get(data_key)
    if text is None:
        return {"generation": 0, "sysctls": {}}
    try:
        state = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ApplierError(f"k8s-configmap: {where} {data_key}: not YAML: {err}") from err
    if not isinstance(state, dict) or not isinstance(state.get("sysctls", {}), dict):
        raise ApplierError(f"k8s-configmap: {where} {data_key}: must map generation and sysctls")
    generation = state.get("generation", 0)
    if isinstance(generation, bool) or not isinstance(generation, int):
        raise ApplierError(f"k8s-configmap: {where} {data_key}: generation must be an integer")
    return {"generation": generation, "sysctls": dict(state.get("sysctls") or {})}


class KubeConfigMapApplier(TextApplier):
    """Desired sysctls in node-tuning ConfigMaps."""

    kind = "k8s-configmap"
    value_kind = "a sysctl string"
    knob_class = KnobClass.COLD

    def __init__(
        self,
        client: KubeClient,
        *,
        data_key: str = DATA_KEY,
        retries: int = 5,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.data_key = data_key
        self.retries = retries
        self.clock = clock

    def _get(self, namespace: str, name: str) -> Obj:
        try:
            return call_with_retry(
                f"k8s-configmap: {namespace}/{name}",
                partial(self.client.get_configmap, namespace, name),
                self.retries,
                self.clock,
            )
        except NotFound:
            return {"metadata": {"name": name, "namespace": namespace}, "data": {}}
        except KubeError as err:
            raise ApplierError(str(err)) from err

    def state(self, namespace: str, name: str) -> dict[str, Any]:
        """The generation and sysctls now held in ``namespace/name``."""
        return load(self._get(namespace, name), self.data_key, f"{namespace}/{name}")

    def check_target(self, target: str) -> None:
        _split(target)

    def _values(self, targets: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for target in targets:
            namespace, name, key = _split(target)
            value = self.state(namespace, name)["sysctls"].get(key)
            out[target] = None if value is None else str(value)
        return out

    def rollback(self, snapshot: Mapping[str, Any]) -> None:
        self.apply(snapshot)
        self.verify({t: "" if v is None else v for t, v in snapshot.items() if v is not None})

    def apply(self, desired: Mapping[str, Any]) -> None:
        groups: dict[tuple[str, str], dict[str, str | None]] = {}
        for target, value in desired.items():
            namespace, name, key = _split(target)
            groups.setdefault((namespace, name), {})[key] = self.text(value)
        for (namespace, name), changes in groups.items():
            where = f"{namespace}/{name}"

            def mutate(
                cm: Obj, changes: dict[str, str | None] = changes, where: str = where
            ) -> bool:
                state = load(cm, self.data_key, where)
                sysctls = {k: str(v) for k, v in state["sysctls"].items()}
                wanted = {k: v for k, v in sysctls.items() if k not in changes}
                wanted.update({k: v for k, v in changes.items() if v is not None})
                if wanted == sysctls:
                    return False
                body = {
                    "generation": state["generation"] + 1,
                    "sysctls": dict(sorted(wanted.items())),
                }
                cm["data"] = {**(cm.get("data") or {}), self.data_key: yaml.safe_dump(body)}
                return True

            def write(cm: Obj, ns: str = namespace, n: str = name) -> Obj:
                if cm["metadata"].get("resourceVersion"):
                    return self.client.replace_configmap(ns, n, cm)
                try:
                    return self.client.create_configmap(ns, cm)
                except Conflict as err:  # created meanwhile: retry as an update
                    raise Conflict(str(err), 409, "AlreadyExists") from err

            update_with_retry(
                f"k8s-configmap: {where}",
                partial(self._get, namespace, name),
                mutate,
                write,
                self.retries,
                self.clock,
            )
