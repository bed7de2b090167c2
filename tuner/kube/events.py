"""Audit records as core/v1 Kubernetes Events, so ``kubectl describe`` shows what the tuner did.

Decisions:
- The sink is an :data:`tuner.audit.EventSink`: it gets every audit record and turns the ones
  that change or judge something into Events; ``propose`` and bookkeeping records make none.
- involvedObject is each Deployment, HPA or ConfigMap the record's knobs touch (from the
  experiment's applier kind and knob target); a record naming no knob (a result, a promotion)
  refers to every Kubernetes object of its experiment. An experiment that touches none (HAProxy,
  nginx) is reported on the tuner's own pod (``POD_NAME``/``POD_NAMESPACE``), or not at all when
  that is unknown.
- Event names follow client-go's recorder (``<object>.<hex nanoseconds>``), so no two collide.
- The traffic shifter's records (:mod:`tuner.kube.shift_events`: reasons, messages with the
  readings) are about a balancer, which is no Kubernetes object: they are reported on the tuner's
  pod, like a balancer experiment's.
- Emitting is best effort: a failure (RBAC, a timeout) is logged once per kind of failure, and
  never raised, so tuning goes on; the audit file stays the record.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tuner.kube.client import KubeClient, KubeError
from tuner.kube.shift_events import SHIFT_REASONS, describe_shift, is_shift_record
from tuner.spec import Experiment

log = logging.getLogger(__name__)

COMPONENT = "tuneloop-tuner"
MESSAGE_LIMIT = 1024
# audit action -> (reason, type)
REASONS: dict[str, tuple[str, str]] = {
    "apply": ("TuneloopTrialApplied", "Normal"),
    "result": ("TuneloopTrialMeasured", "Normal"),
    "rollback": ("TuneloopRolledBack", "Warning"),
    "rollback_failed": ("TuneloopRollbackFailed", "Warning"),
    "promote": ("TuneloopNewBest", "Normal"),
    "apply_best": ("TuneloopBestApplied", "Normal"),
    "advise": ("TuneloopRecommendation", "Normal"),
    **SHIFT_REASONS,
}
# applier kind -> (apiVersion, kind) of the object its target names
OBJECT_KINDS: dict[str, tuple[str, str]] = {
    "k8s-scale": ("apps/v1", "Deployment"),
    "k8s-env": ("apps/v1", "Deployment"),
    "k8s-hpa": ("autoscaling/v2", "HorizontalPodAutoscaler"),
    "k8s-configmap": ("v1", "ConfigMap"),
}
WARNING_OUTCOMES = ("infeasible", "rolled_back")


@dataclass(frozen=True)
class ObjectRef:
    """What an Event is about."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


def object_of(applier_kind: str, target: str) -> ObjectRef | None:
    """The object a Kubernetes applier's target names (``namespace/name[/container][:key]``)."""
    if applier_kind not in OBJECT_KINDS:
        return None
    parts = target.split(":", 1)[0].split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    api_version, kind = OBJECT_KINDS[applier_kind]
    return ObjectRef(api_version, kind, parts[0], parts[1])


def in_cluster(experiments: Iterable[Experiment] = ()) -> bool:
    """True in a pod (``KUBERNETES_SERVICE_HOST``) or when an experiment has a k8s-* applier."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    return any(a.kind.startswith("k8s-") for e in experiments for a in e.appliers.values())


class KubeEventSink:
    """Callable audit sink creating Events through :class:`KubeClient`."""

    def __init__(
        self,
        client: KubeClient,
        experiments: Iterable[Experiment] = (),
        *,
        pod_name: str | None = None,
        pod_namespace: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.experiments = {e.name: e for e in experiments}
        self.pod_name = pod_name if pod_name is not None else os.environ.get("POD_NAME", "")
        self.pod_namespace = (
            pod_namespace if pod_namespace is not None else os.environ.get("POD_NAMESPACE", "")
        )
        self.instance = self.pod_name or socket.gethostname()
        self._now = now
        self._logged: set[str] = set()

    def __call__(self, entry: Mapping[str, Any]) -> None:
        action = str(entry.get("action", ""))
        if action not in REASONS:
            return
        reason, kind = REASONS[action]
        if action == "result" and entry.get("outcome") in WARNING_OUTCOMES:
            kind = "Warning"
        text = describe_shift(entry) if is_shift_record(entry) else describe(entry)
        message = text[:MESSAGE_LIMIT]
        for ref in self.involved(entry):
            self._emit(ref, reason, kind, message)

    def involved(self, entry: Mapping[str, Any]) -> list[ObjectRef]:
        """The objects an entry is about (see the module docstring)."""
        exp = None if is_shift_record(entry) else self.experiments.get(str(entry.get("experiment")))
        refs: list[ObjectRef] = []
        if exp is not None:
            named: set[str] = set()
            for key in ("params", "to", "restored"):
                value = entry.get(key)
                if isinstance(value, Mapping):
                    named.update(str(k) for k in value)
            knobs = [
                k for k in exp.knobs if not named or k.name in named or k.applier in named
            ] or list(exp.knobs)
            for knob in knobs:
                spec = exp.appliers.get(knob.applier)
                ref = object_of(spec.kind, knob.target) if spec is not None else None
                if ref is not None and ref not in refs:
                    refs.append(ref)
        if not refs and self.pod_name and self.pod_namespace:
            refs.append(ObjectRef("v1", "Pod", self.pod_namespace, self.pod_name))
        return refs

    def _emit(self, ref: ObjectRef, reason: str, kind: str, message: str) -> None:
        now = self._now()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"name": f"{ref.name}.{int(now * 1e9):x}", "namespace": ref.namespace},
            "involvedObject": ref.to_json(),
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.client.create_event(ref.namespace, body)
        except KubeError as exc:
            key = f"{exc.status}:{ref.namespace}"
            if key not in self._logged:
                self._logged.add(key)
                log.warning("cannot create Kubernetes Events (tuning goes on): %s", exc)


def describe(entry: Mapping[str, Any]) -> str:
    """A short, human message for one audit record."""
    action, exp = entry.get("action"), entry.get("experiment")
    trial = f" trial {entry['trial']}" if "trial" in entry else ""
    parts = [f"{exp}{trial}: {action}"]
    for key in ("params", "to"):
        value = entry.get(key)
        if isinstance(value, Mapping) and value:
            parts.append(", ".join(f"{k}={v}" for k, v in sorted(value.items(), key=str)))
    for key in ("outcome", "objective", "reason"):
        if entry.get(key) not in (None, ""):
            parts.append(f"{key}={entry[key]}")
    return "; ".join(parts)
