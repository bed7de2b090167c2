"""HPA bounds and CPU target; targets are ``namespace/hpa:min|max|target_cpu``.

Changes to one HPA are written together in one update carrying its resourceVersion (retried on
409), and min <= max is checked on the result before writing, so a pair of changes that is only
valid together (raising both bounds) goes through, and an invalid one names both values.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from tuneloop.clock import Clock
from tuner.appliers.base import (
    AcceptedRange,
    Applier,
    ApplierError,
    KnobClass,
    Value,
    number_text,
)
from tuner.kube.client import KubeClient, Obj
from tuner.kube.ops import as_int, read_with_retry, split, update_with_retry

FIELDS = ("min", "max", "target_cpu")
RANGES = {
    "min": AcceptedRange(1, 10_000, "HPA minReplicas"),
    "max": AcceptedRange(1, 10_000, "HPA maxReplicas"),
    "target_cpu": AcceptedRange(1, 1000, "HPA CPU utilization targets (percent)"),
}


def _split(target: str) -> tuple[str, str, str]:
    (namespace, name), field = split("k8s-hpa", target, 2, True, "namespace/hpa:field")
    if field not in FIELDS:
        raise ApplierError(f"k8s-hpa: {target}: field must be one of {', '.join(FIELDS)}")
    return namespace, name, field


def _cpu_target(hpa: Obj, target: str) -> dict[str, Any]:
    for metric in hpa["spec"].get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            spec = resource.get("target") or {}
            if spec.get("type") == "Utilization":
                return dict(spec)
    raise ApplierError(f"k8s-hpa: {target}: the HPA has no CPU Utilization metric to tune")


def get_field(hpa: Obj, field: str, target: str) -> int:
    """One tunable field of an HPA object."""
    spec = hpa["spec"]
    if field == "min":
        return int(spec.get("minReplicas", 1))
    if field == "max":
        return int(spec["maxReplicas"])
    return int(_cpu_target(hpa, target)["averageUtilization"])


def set_field(hpa: Obj, field: str, value: int, target: str) -> None:
    spec = hpa["spec"]
    if field == "min":
        spec["minReplicas"] = value
    elif field == "max":
        spec["maxReplicas"] = value
    else:
        _cpu_target(hpa, target)  # raises when there is none
        for metric in spec["metrics"]:
            resource = metric.get("resource") or {}
            if metric.get("type") == "Resource" and resource.get("name") == "cpu":
                resource["target"]["averageUtilization"] = value


class KubeHpaApplier(Applier):
    """Bounds and target of HorizontalPodAutoscalers (autoscaling/v2)."""

    kind = "k8s-hpa"
    knob_class = KnobClass.WARM

    def __init__(self, client: KubeClient, *, retries: int = 3, clock: Clock | None = None) -> None:
        self.client = client
        self.retries = retries
        self.clock = clock

    def check_target(self, target: str) -> None:
        _split(target)

    def accepted_range(self, target: str) -> AcceptedRange:
        return RANGES[_split(target)[2]]

    def bounds_conflicts(self, bounds: Mapping[str, tuple[float, float]]) -> dict[str, str]:
        """A min knob that may rise above the lowest value the same HPA's max knob may take."""
        by_hpa: dict[tuple[str, str], dict[str, tuple[str, float, float]]] = {}
        for target, (low, high) in bounds.items():
            namespace, name, field = _split(target)
            by_hpa.setdefault((namespace, name), {})[field] = (target, low, high)
        conflicts = {}
        for (namespace, name), fields in by_hpa.items():
            if "min" in fields and "max" in fields:
                min_target, _, min_high = fields["min"]
                max_target, max_low, _ = fields["max"]
                if min_high > max_low:
                    conflicts[min_target] = (
                        f"HPA {namespace}/{name}: min may reach {number_text(min_high)} while "
                        f"max ({max_target}) may go down to {number_text(max_low)}; "
                        "min must stay <= max"
                    )
        return conflicts

    def live_bounds_conflicts(self, bounds: Mapping[str, tuple[float, float]]) -> dict[str, str]:
        """A min knob above the HPA's current max (or a max knob below its min) with the other
        bound not tuned: some trials could never be applied."""
        tuned: dict[tuple[str, str], set[str]] = {}
        for target in bounds:
            namespace, name, field = _split(target)
            tuned.setdefault((namespace, name), set()).add(field)
        conflicts = {}
        for target, (low, high) in bounds.items():
            namespace, name, field = _split(target)
            other = {"min": "max", "max": "min"}.get(field)
            if other is None or other in tuned[(namespace, name)]:
                continue
            hpa = f"{namespace}/{name}:{other}"
            current = int(self.read([hpa])[hpa])
            if field == "min" and high > current:
                conflicts[target] = (
                    f"HPA {namespace}/{name}: min may reach {number_text(high)} but maxReplicas "
                    f"is {current}; min must stay <= max"
                )
            elif field == "max" and low < current:
                conflicts[target] = (
                    f"HPA {namespace}/{name}: max may go down to {number_text(low)} but "
                    f"minReplicas is {current}; max must stay >= min"
                )
        return conflicts

    def read(self, targets: list[str]) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for target in targets:
            namespace, name, field = _split(target)
            hpa = read_with_retry(
                f"k8s-hpa: {target}",
                partial(self.client.get_hpa, namespace, name),
                self.retries,
                self.clock,
            )
            out[target] = get_field(hpa, field, target)
        return out

    def apply(self, desired: Mapping[str, Value]) -> None:
        by_hpa: dict[tuple[str, str], dict[str, tuple[str, int]]] = {}
        for target, value in desired.items():
            namespace, name, field = _split(target)
            low, high = int(RANGES[field].low), int(RANGES[field].high)
            by_hpa.setdefault((namespace, name), {})[field] = (
                target,
                as_int(self.kind, target, value, low, high),
            )
        for (namespace, name), fields in by_hpa.items():

            def mutate(
                hpa: Obj,
                fields: dict[str, tuple[str, int]] = fields,
                where: str = f"{namespace}/{name}",
            ) -> bool:
                changed = False
                for field, (target, value) in fields.items():
                    if get_field(hpa, field, target) != value:
                        set_field(hpa, field, value, target)
                        changed = True
                low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
                if low > high:
                    raise ApplierError(f"k8s-hpa: {where}: min {low} would exceed max {high}")
                return changed

            update_with_retry(
                f"k8s-hpa: {namespace}/{name}",
                partial(self.client.get_hpa, namespace, name),
                mutate,
                partial(self.client.replace_hpa, namespace, name),
                self.retries,
                self.clock,
            )
