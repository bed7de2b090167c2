"""Deployment replicas through the scale subresource, refusing to fight another owner.

Before a change it checks who else sets the replica count: an HPA whose scaleTargetRef is this
Deployment (then tune the HPA's bounds with the k8s-hpa applier instead), a controlling
ownerReference (an operator owns the Deployment), or a server-side-apply manager that owns
``spec.replicas``. Any of these makes apply stop with a message naming the owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from tuneloop.clock import Clock
from tuner.appliers.base import AcceptedRange, Applier, ApplierError, KnobClass, Value
from tuner.kube.client import KubeClient, Obj
from tuner.kube.ops import as_int, read_with_retry, split, update_with_retry

MAX_REPLICAS = 10_000
REPLICAS = AcceptedRange(0, MAX_REPLICAS, "Deployment replicas")


def _split(target: str) -> tuple[str, str]:
    (namespace, name), _ = split("k8s-scale", target, 2, False, "namespace/deployment")
    return namespace, name


class KubeScaleApplier(Applier):
    """Replica counts of Deployments; targets are ``namespace/deployment``."""

    kind = "k8s-scale"
    knob_class = KnobClass.WARM

    def __init__(self, client: KubeClient, *, retries: int = 3, clock: Clock | None = None) -> None:
        self.client = client
        self.retries = retries
        self.clock = clock

    def check_target(self, target: str) -> None:
        _split(target)

    def accepted_range(self, target: str) -> AcceptedRange:
        return REPLICAS

    def read(self, targets: list[str]) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for target in targets:
            namespace, name = _split(target)
            scale = read_with_retry(
                f"k8s-scale: {target}",
                partial(self.client.get_scale, namespace, name),
                self.retries,
                self.clock,
            )
            out[target] = int(scale["spec"].get("replicas", 0))
        return out

    def owner(self, namespace: str, name: str) -> str | None:
        """Who else sets this Deployment's replicas, or None."""
        what = f"k8s-scale: {namespace}/{name}"
        hpas = read_with_retry(
            what, partial(self.client.list_hpas, namespace), self.retries, self.clock
        )
        for hpa in hpas:
            ref = hpa["spec"]["scaleTargetRef"]
            if ref.get("kind") == "Deployment" and ref.get("name") == name:
                hpa_name = hpa["metadata"]["name"]
                return (
                    f"HorizontalPodAutoscaler {namespace}/{hpa_name} scales it; tune the HPA "
                    f"with the k8s-hpa applier (targets {namespace}/{hpa_name}:min|max) instead"
                )
        meta = read_with_retry(
            what, partial(self.client.get_deployment, namespace, name), self.retries, self.clock
        )["metadata"]
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller"):
                return f"it is controlled by {ref.get('kind')} {ref.get('name')}"
        for entry in meta.get("managedFields") or []:
            fields = (entry.get("fieldsV1") or {}).get("f:spec") or {}
            manager = entry.get("manager")
            owns = entry.get("operation") == "Apply" and "f:replicas" in fields
            if owns and manager != self.client.field_manager:
                return f"field manager {manager!r} owns spec.replicas (server-side apply)"
        return None

    def apply(self, desired: Mapping[str, Value]) -> None:
        wanted = {t: as_int(self.kind, t, v, 0, MAX_REPLICAS) for t, v in desired.items()}
        for target, replicas in wanted.items():
            namespace, name = _split(target)
            if self.read([target])[target] == replicas:
                continue
            other = self.owner(namespace, name)
            if other:
                raise ApplierError(f"k8s-scale: refusing to scale {target}: {other}")

            def mutate(scale: Obj, replicas: int = replicas) -> bool:
                if scale["spec"].get("replicas") == replicas:
                    return False
                scale["spec"]["replicas"] = replicas
                return True

            update_with_retry(
                f"k8s-scale: {target}",
                partial(self.client.get_scale, namespace, name),
                mutate,
                partial(self.client.replace_scale, namespace, name),
                self.retries,
                self.clock,
            )
