"""A thin wrapper over the kubernetes client: the only module that talks to the Kubernetes API.

Decisions:
- Objects cross this boundary as plain JSON-shaped dicts (camelCase keys, as in the API docs and
  ``kubectl get -o json``), so appliers neither import nor depend on the client's model classes.
- Every call has a timeout; ``ApiException`` and urllib3 errors become our own errors here
  (NotFound, Forbidden, Conflict, Invalid, KubeTimeout, KubeError), each naming the verb, the
  resource and the API server's own message.
- Writes are full replaces carrying ``metadata.resourceVersion`` (optimistic concurrency): a
  stale write is a Conflict that the caller retries after re-reading; nothing is force-written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]


class KubeError(Exception):
    """The API server refused or failed a request; ``status`` is the HTTP code when there is one."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(KubeError):
    """404: the object does not exist."""


class Forbidden(KubeError):
    """403: RBAC denies this verb on this resource."""


class Conflict(KubeError):
    """409: a stale resourceVersion (re-read and retry) or the object already exists."""


class Invalid(KubeError):
    """422: the API server rejected the object's content."""


class KubeTimeout(KubeError):
    """No answer within the timeout."""


_BY_STATUS: dict[int, type[KubeError]] = {
    404: NotFound,
    403: Forbidden,
    409: Conflict,
    422: Invalid,
}


def _translate(err: ApiException, what: str) -> KubeError:
    message, reason = str(err.reason or ""), ""
    try:
        body = json.loads(err.body or "{}")
        message = body.get("message") or message
        reason = body.get("reason") or ""
    except (TypeError, ValueError):
        pass
    status = int(err.status) if err.status else None
    cls = _BY_STATUS.get(status or 0, KubeError)
    return cls(f"{what}: {status} {reason}: {message}".replace("  ", " "), status, reason)


class KubeClient:
    """Typed access to the few API calls the tuner makes."""

    def __init__(
        self, api_client: k8s.ApiClient, *, timeout_s: float = 10.0, field_manager: str = "tuneloop"
    ) -> None:
        self.api_client = api_client
        self.timeout_s = timeout_s
        self.field_manager = field_manager
        self.apps = k8s.AppsV1Api(api_client)
        self.autoscaling = k8s.AutoscalingV2Api(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.coordination = k8s.CoordinationV1Api(api_client)

    @classmethod
    def connect(
        cls,
        *,
        host: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout_s: float = 10.0,
    ) -> KubeClient:
        """A client for ``host`` (plain, for tests), else in-cluster config, else a kubeconfig."""
        configuration = k8s.Configuration()
        if host is not None:
            configuration.host = host
        elif kubeconfig is None and context is None:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except k8s_config.ConfigException:
                k8s_config.load_kube_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        configuration.retries = False  # our callers decide what to retry
        return cls(k8s.ApiClient(configuration), timeout_s=timeout_s)

    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        try:
            result = method(*args, _request_timeout=self.timeout_s, **kwargs)
        except ApiException as err:
            raise _translate(err, what) from err
        except (urllib3.exceptions.TimeoutError, TimeoutError) as err:
            raise KubeTimeout(f"{what}: no answer within {self.timeout_s:g}s") from err
        except urllib3.exceptions.MaxRetryError as err:
            if isinstance(err.reason, urllib3.exceptions.TimeoutError):
                raise KubeTimeout(f"{what}: no answer within {self.timeout_s:g}s") from err
            raise KubeError(f"{what}: API server unreachable: {err.reason}") from err
        except urllib3.exceptions.HTTPError as err:
            raise KubeError(f"{what}: {err}") from err
        return dict(self.api_client.sanitize_for_serialization(result))

    def _write(self, what: str, method: Callable[..., Any], *args: Any) -> Obj:
        return self._call(what, method, *args, field_manager=self.field_manager)

    # Deployments and their scale subresource.
    def get_deployment(self, namespace: str, name: str) -> Obj:
        return self._call(
            f"get deployment {namespace}/{name}",
            self.apps.read_namespaced_deployment,
            name,
            namespace,
        )

    def replace_deployment(self, namespace: str, name: str, body: Obj) -> Obj:
        model = k8s.V1Deployment.from_dict(body)
        return self._write(
            f"update deployment {namespace}/{name}",
            self.apps.replace_namespaced_deployment,
            name,
            namespace,
            model,
        )

    def get_scale(self, namespace: str, name: str) -> Obj:
        return self._call(
            f"get deployment {namespace}/{name}/scale",
            self.apps.read_namespaced_deployment_scale,
            name,
            namespace,
        )

    def replace_scale(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._write(
            f"update deployment {namespace}/{name}/scale",
            self.apps.replace_namespaced_deployment_scale,
            name,
            namespace,
            k8s.V1Scale.from_dict(body),
        )

    # HorizontalPodAutoscalers (autoscaling/v2).
    def list_hpas(self, namespace: str) -> list[Obj]:
        listing = self._call(
            f"list horizontalpodautoscalers in {namespace}",
            self.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            namespace,
        )
        return list(listing.get("items") or [])

    def get_hpa(self, namespace: str, name: str) -> Obj:
        return self._call(
            f"get horizontalpodautoscaler {namespace}/{name}",
            self.autoscaling.read_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
        )

    def replace_hpa(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._write(
            f"update horizontalpodautoscaler {namespace}/{name}",
            self.autoscaling.replace_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
            k8s.V2HorizontalPodAutoscaler.from_dict(body),
        )

    # ConfigMaps.
    def get_configmap(self, namespace: str, name: str) -> Obj:
        return self._call(
            f"get configmap {namespace}/{name}",
            self.core.read_namespaced_config_map,
            name,
            namespace,
        )

    def create_configmap(self, namespace: str, body: Obj) -> Obj:
        name = body.get("metadata", {}).get("name", "")
        return self._write(
            f"create configmap {namespace}/{name}",
            self.core.create_namespaced_config_map,
            namespace,
            k8s.V1ConfigMap.from_dict(body),
        )

    def replace_configmap(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._write(
            f"update configmap {namespace}/{name}",
            self.core.replace_namespaced_config_map,
            name,
            namespace,
            k8s.V1ConfigMap.from_dict(body),
        )

    # Events and Leases.
    def create_event(self, namespace: str, body: Obj) -> Obj:
        return self._write(
            f"create event in {namespace}",
            self.core.create_namespaced_event,
            namespace,
            k8s.CoreV1Event.from_dict(body),
        )

    def get_lease(self, namespace: str, name: str) -> Obj:
        return self._call(
            f"get lease {namespace}/{name}",
            self.coordination.read_namespaced_lease,
            name,
            namespace,
        )

    def create_lease(self, namespace: str, body: Obj) -> Obj:
        name = body.get("metadata", {}).get("name", "")
        return self._write(
            f"create lease {namespace}/{name}",
            self.coordination.create_namespaced_lease,
            namespace,
            k8s.V1Lease.from_dict(body),
        )

    def replace_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._write(
            f"update lease {namespace}/{name}",
            self.coordination.replace_namespaced_lease,
            name,
            namespace,
            k8s.V1Lease.from_dict(body),
        )
