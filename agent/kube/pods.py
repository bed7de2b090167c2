"""Discovery of inference servers: annotated, running pods on this node.

A pod opts in with annotations::

    tuneloop.io/scrape: "true"
    tuneloop.io/port: "8000"        # default 8000
    tuneloop.io/path: "/metrics"    # default /metrics
    tuneloop.io/engine: "vllm"      # vllm, sglang, tgi, triton or auto (default)
    tuneloop.io/model: "llama-3-8b" # optional; used where the engine labels no model (TGI)

Design decisions: a pod with a wrong annotation is skipped with a warning that names the pod,
the annotation and the value; the other pods are still listed. An API error (403 when the
ServiceAccount may not list pods) raises ``DiscoveryError``. ``PodTargets`` lists at most
once per refresh interval and, when a listing fails, keeps the last good list and logs the
failure once per outage, so a flapping API server neither blanks the metrics nor floods the log.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from agent.collectors.inference_target import ENGINE_CHOICES, InferenceTarget

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "tuneloop.io/"
SCRAPE = ANNOTATION_PREFIX + "scrape"
PORT = ANNOTATION_PREFIX + "port"
PATH = ANNOTATION_PREFIX + "path"
ENGINE = ANNOTATION_PREFIX + "engine"
MODEL = ANNOTATION_PREFIX + "model"
DEFAULT_PORT = 8000
DEFAULT_PATH = "/metrics"
PAGE_SIZE = 500


class DiscoveryError(Exception):
    """Pods could not be listed; the message says which node and why."""


class PodsApi(Protocol):
    """The one CoreV1Api call the lister makes."""

    def list_pod_for_all_namespaces(
        self,
        *,
        field_selector: str | None = ...,
        limit: int | None = ...,
        _continue: str | None = ...,
        _request_timeout: float | None = ...,
    ) -> Any:
        """List pods (``kubernetes.client.V1PodList``)."""
        ...


class AnnotationError(ValueError):
    """One pod's tuneloop annotation is wrong."""


def _port(value: str | None) -> int:
    if value is None:
        return DEFAULT_PORT
    try:
        port = int(value.strip())
    except ValueError:
        raise AnnotationError(f"{PORT} must be a port number, got {value!r}") from None
    if not 1 <= port <= 65535:
        raise AnnotationError(f"{PORT} must be within 1-65535, got {value!r}")
    return port


def _path(value: str | None) -> str:
    if value is None:
        return DEFAULT_PATH
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise AnnotationError(f"{PATH} must be an absolute URL path, got {value!r}")
    return value


def _engine(value: str | None) -> str:
    if value is None:
        return "auto"
    if value not in ENGINE_CHOICES:
        raise AnnotationError(f"{ENGINE} must be one of {', '.join(ENGINE_CHOICES)}, got {value!r}")
    return value


def _host(pod_ip: str) -> str:
    return f"[{pod_ip}]" if ipaddress.ip_address(pod_ip).version == 6 else pod_ip


def target_of(pod: Any) -> InferenceTarget | None:
    """The target an annotated, running pod declares; None when it does not take part.

    Raises AnnotationError when it opts in with a wrong annotation.
    """
    meta, status = pod.metadata, pod.status
    annotations: dict[str, str] = (meta.annotations if meta else None) or {}
    if annotations.get(SCRAPE, "").strip().lower() != "true":
        return None
    if status is None or status.phase != "Running" or not status.pod_ip:
        return None
    port = _port(annotations.get(PORT))
    path = _path(annotations.get(PATH))
    engine = _engine(annotations.get(ENGINE))
    model = annotations.get(MODEL) or None
    return InferenceTarget(
        name=f"{meta.namespace}/{meta.name}",
        url=f"http://{_host(status.pod_ip)}:{port}{path}",
        engine=engine,
        model=model,
    )


def _incluster_api() -> Any:
    """A CoreV1Api configured from the pod's ServiceAccount."""
    from kubernetes import client, config

    config.load_incluster_config()
    return client.CoreV1Api()


class PodLister:
    """Lists the inference targets that pods on one node declare."""

    def __init__(self, api: PodsApi | None = None, timeout_s: float = 10.0) -> None:
        self._api: PodsApi = api if api is not None else _incluster_api()
        self._timeout_s = timeout_s

    def _pods(self, node_name: str) -> list[Any]:
        from kubernetes.client import ApiException

        pods: list[Any] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "field_selector": f"spec.nodeName={node_name}",
                "limit": PAGE_SIZE,
                "_request_timeout": self._timeout_s,
            }
            if token:
                kwargs["_continue"] = token
            try:
                page = self._api.list_pod_for_all_namespaces(**kwargs)
            except ApiException as exc:
                raise DiscoveryError(
                    f"listing pods on node {node_name}: HTTP {exc.status} {exc.reason}"
                    + (
                        " (the agent's ServiceAccount needs list on pods)"
                        if exc.status == 403
                        else ""
                    )
                ) from exc
            except Exception as exc:  # urllib3 connection errors, timeouts
                raise DiscoveryError(f"listing pods on node {node_name}: {exc}") from exc
            pods.extend(page.items or [])
            token = getattr(page.metadata, "_continue", None) if page.metadata else None
            if not token:
                return pods

    def list_annotated_pods(self, node_name: str) -> list[InferenceTarget]:
        """Targets of the running pods on ``node_name`` annotated ``tuneloop.io/scrape: "true"``."""
        if not node_name:
            raise DiscoveryError("node name is empty (set NODE_NAME from spec.nodeName)")
        targets = []
        for pod in self._pods(node_name):
            try:
                target = target_of(pod)
            except ValueError as exc:  # AnnotationError, or a malformed pod IP
                meta = pod.metadata
                log.warning("pod %s/%s skipped: %s", meta.namespace, meta.name, exc)
                continue
            if target is not None:
                targets.append(target)
        return sorted(targets, key=lambda t: t.name)


def list_annotated_pods(node_name: str) -> list[InferenceTarget]:
    """Targets declared by pods on ``node_name``, listed with the in-cluster configuration."""
    return PodLister().list_annotated_pods(node_name)


class PodTargets:
    """Static targets plus those discovered on this node, relisted at most every ``refresh_s``.

    Call it for the current list: it is the ``targets`` callable of ``InferenceCollector``.
    Static targets win over a discovered one of the same name.
    """

    def __init__(
        self,
        discover: Callable[[], Sequence[InferenceTarget]],
        static: Sequence[InferenceTarget] = (),
        refresh_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._discover = discover
        self._static = tuple(static)
        self._refresh_s = refresh_s
        self._clock = clock
        self._discovered: tuple[InferenceTarget, ...] = ()
        self._listed_at: float | None = None
        self._failing = False

    def _refresh(self) -> None:
        now = self._clock()
        if self._listed_at is not None and now - self._listed_at < self._refresh_s:
            return
        self._listed_at = now
        try:
            self._discovered = tuple(self._discover())
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "pod discovery failed, keeping the last %d targets: %s",
                    len(self._discovered),
                    exc,
                )
            self._failing = True
            return
        if self._failing:
            log.info("pod discovery recovered: %d targets", len(self._discovered))
        self._failing = False

    def __call__(self) -> list[InferenceTarget]:
        self._refresh()
        names = {t.name for t in self._static}
        return [*self._static, *(t for t in self._discovered if t.name not in names)]


def discovering_targets(
    static: Sequence[InferenceTarget], node_name: str, refresh_s: float = 60.0
) -> PodTargets:
    """Static targets plus the pods on ``node_name``, listed with the in-cluster configuration.

    The API client is made on first use, inside the refresh, so an agent started outside a
    cluster (or without its ServiceAccount token) keeps its static targets and logs why once.
    """
    listers: list[PodLister] = []

    def discover() -> list[InferenceTarget]:
        if not listers:
            listers.append(PodLister())
        return listers[0].list_annotated_pods(node_name)

    return PodTargets(discover, static, refresh_s)
