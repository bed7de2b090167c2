"""A fake Kubernetes API server over real HTTP on 127.0.0.1 for the real kubernetes client.

It serves the few resources the tuner touches (Deployments with their /scale subresource,
autoscaling/v2 HPAs, ConfigMaps, core Events, coordination.k8s.io Leases) with the API server's
semantics that matter to us: a global resourceVersion bumped on every write; 409 Conflict on a
PUT with a stale resourceVersion and AlreadyExists on a duplicate create; 404 NotFound; 403
Forbidden from injected deny rules; 422 Invalid for cheap checks (negative replicas, HPA bounds,
non-string ConfigMap data); slow answers for timeout tests; injected 429/5xx answers and dropped
connections (``fail``, ``drop``) for retry tests; and a simulated Deployment rollout in
which status (observedGeneration, updatedReplicas, readyReplicas, availableReplicas) catches up
after ``rollout_delay_s`` or on ``complete_rollout()``. PATCH is a JSON merge patch (enough for
the scale subresource and flat fields; no strategic list merging). Error bodies are v1 Status
objects worded like the real server's.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass(frozen=True)
class Kind:
    resource: str
    group: str  # "" for core
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


KINDS = {
    "deployments": Kind("deployments", "apps", "v1", "Deployment"),
    "horizontalpodautoscalers": Kind(
        "horizontalpodautoscalers", "autoscaling", "v2", "HorizontalPodAutoscaler"
    ),
    "configmaps": Kind("configmaps", "", "v1", "ConfigMap"),
    "events": Kind("events", "", "v1", "Event"),
    "leases": Kind("leases", "coordination.k8s.io", "v1", "Lease"),
}
_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)/"
    r"(?P<resource>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>scale|status))?)?$"
)


class ApiFailure(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeApiServer:
    """Start with ``with FakeApiServer() as api:``; point the client's host at ``api.url``."""

    def __init__(self, rollout_delay_s: float | None = 0.0) -> None:
        self.rollout_delay_s = rollout_delay_s
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._rv = 1000
        self._lock = threading.RLock()
        self._deny: list[tuple[str, str, str | None]] = []
        self._delay: list[tuple[float, str | None, str | None]] = []
        self._due: dict[tuple[str, str], float | None] = {}
        self._interfere: dict[tuple[str, str, str], int] = {}
        self._faults: list[list[Any]] = []  # [times left, code or None (drop), method, resource]
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    # Test controls.
    def add(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Seed an object (as if created), returning the stored copy."""
        meta = obj.setdefault("metadata", {})
        with self._lock:
            stored = self._create(KINDS[resource], meta.get("namespace", "default"), obj, "seed")
        return copy.deepcopy(stored)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            self._settle(resource, namespace, name)
            return copy.deepcopy(self.objects[(resource, namespace, name)])

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Answer 403 to ``verb`` (get, list, create, update, patch) on ``resource``."""
        self._deny.append((verb, resource, namespace))

    def slow(self, seconds: float, verb: str | None = None, resource: str | None = None) -> None:
        """Delay answers by ``seconds`` (optionally only for one verb / resource)."""
        self._delay.append((seconds, verb, resource))

    def interfere(self, resource: str, namespace: str, name: str, times: int = 1) -> None:
        """Let "another writer" change the object just before each of the next ``times`` PUTs."""
        self._interfere[(resource, namespace, name)] = times

    def fail(
        self, code: int, times: int = 1, method: str | None = None, resource: str | None = None
    ) -> None:
        """Answer the next ``times`` matching requests with ``code`` (429, 500, 503, ...)."""
        self._faults.append([times, code, method, resource])

    def drop(self, times: int = 1, method: str | None = None, resource: str | None = None) -> None:
        """Close the connection of the next ``times`` matching requests without an answer."""
        self._faults.append([times, None, method, resource])

    def _fault(self, method: str, resource: str | None) -> tuple[bool, int | None]:
        """(True, code or None for a drop) when an injected fault takes this request."""
        with self._lock:
            for fault in self._faults:
                left, code, want_method, want_resource = fault
                if left > 0 and want_method in (None, method) and want_resource in (None, resource):
                    fault[0] -= 1
                    return True, code
        return False, None

    def clear_faults(self) -> None:
        self._deny.clear()
        self._delay.clear()
        self._faults.clear()

    def complete_rollout(self, namespace: str, name: str) -> None:
        """Finish a pending rollout of a Deployment now."""
        with self._lock:
            self._due[(namespace, name)] = 0.0
            self._settle("deployments", namespace, name)

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("PUT", "PATCH", "POST", "DELETE")]

    # Storage.
    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _create(self, kind: Kind, ns: str, obj: dict[str, Any], manager: str) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ApiFailure(
                422, "Invalid", f"{kind.kind} is invalid: metadata.name: Required value"
            )
        key = (kind.resource, ns, name)
        if key in self.objects:
            raise ApiFailure(409, "AlreadyExists", f'{kind.qualified} "{name}" already exists')
        self._validate(kind, obj)
        obj.update(apiVersion=kind.api_version, kind=kind.kind)
        meta.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=_now())
        meta.setdefault("managedFields", []).append(self._managed(kind, manager))
        if kind.resource == "deployments":
            meta["generation"] = 1
            replicas = obj["spec"].setdefault("replicas", 1)
            obj["status"] = self._done_status(1, replicas)
        self._bump(obj)
        self.objects[key] = obj
        return obj

    @staticmethod
    def _managed(kind: Kind, manager: str) -> dict[str, Any]:
        return {
            "manager": manager,
            "operation": "Update",
            "apiVersion": kind.api_version,
            "time": _now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }

    @staticmethod
    def _done_status(generation: int, replicas: int) -> dict[str, Any]:
        return {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }

    def _validate(self, kind: Kind, obj: dict[str, Any]) -> None:
        name = obj["metadata"].get("name")
        spec = obj.get("spec") or {}

        def invalid(field: str, value: Any, why: str) -> ApiFailure:
            return ApiFailure(
                422,
                "Invalid",
                f'{kind.kind}.{kind.group or "core"} "{name}" is invalid: '
                f"{field}: Invalid value: {json.dumps(value)}: {why}",
            )

        if kind.resource == "deployments":
            if not spec.get("selector") or not spec.get("template"):
                raise invalid("spec.template", None, "selector and template are required")
            if spec.get("replicas", 0) < 0:
                raise invalid(
                    "spec.replicas", spec["replicas"], "must be greater than or equal to 0"
                )
        elif kind.resource == "horizontalpodautoscalers":
            low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
            if low < 1:
                raise invalid("spec.minReplicas", low, "must be greater than or equal to 1")
            if high < low:
                raise invalid(
                    "spec.maxReplicas", high, "must be greater than or equal to minReplicas"
                )
        elif kind.resource == "configmaps":
            for key, value in (obj.get("data") or {}).items():
                if not isinstance(value, str):
                    raise invalid(f"data[{key}]", value, "must be a string")

    def _settle(self, resource: str, ns: str, name: str) -> None:
        if resource != "deployments":
            return
        due = self._due.get((ns, name))
        obj = self.objects.get((resource, ns, name))
        if obj is None or due is None or time.monotonic() < due:
            return
        del self._due[(ns, name)]
        obj["status"] = self._done_status(obj["metadata"]["generation"], obj["spec"]["replicas"])
        self._bump(obj)

    def _update(
        self, kind: Kind, ns: str, name: str, new: dict[str, Any], manager: str, patch: bool
    ) -> dict[str, Any]:
        key = (kind.resource, ns, name)
        old = self.objects.get(key)
        if old is None:
            raise ApiFailure(404, "NotFound", f'{kind.qualified} "{name}" not found')
        if patch:
            new = merge_patch(old, new)
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ApiFailure(400, "BadRequest", "the name of the object does not match the URL")
        sent_rv = meta.get("resourceVersion")
        if not patch and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise ApiFailure(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        self._validate(kind, new)
        for kept in ("uid", "creationTimestamp", "namespace", "generation", "managedFields"):
            if kept in old["metadata"]:
                meta[kept] = copy.deepcopy(old["metadata"][kept])
        meta["name"] = name
        managers = meta.setdefault("managedFields", [])
        if manager not in {m.get("manager") for m in managers}:
            managers.append(self._managed(kind, manager))
        new.update(apiVersion=kind.api_version, kind=kind.kind)
        if kind.resource == "deployments":
            new["status"] = old.get(
                "status", {}
            )  # status is not writable through the main resource
            if new.get("spec") != old.get("spec"):
                meta["generation"] = old["metadata"]["generation"] + 1
                self._start_rollout(ns, name, new)
        self._bump(new)
        self.objects[key] = new
        return new

    def _start_rollout(self, ns: str, name: str, obj: dict[str, Any]) -> None:
        replicas = obj["spec"]["replicas"]
        status = obj["status"]
        status.update(replicas=replicas, updatedReplicas=0)
        status["readyReplicas"] = min(status.get("readyReplicas", 0), replicas)
        status["availableReplicas"] = min(status.get("availableReplicas", 0), replicas)
        delay = self.rollout_delay_s
        self._due[(ns, name)] = None if delay is None else time.monotonic() + delay
        if delay == 0:
            self._settle("deployments", ns, name)

    def _scale(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        labels = obj["spec"]["selector"].get("matchLabels", {})
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {
                "replicas": obj["status"].get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            },
        }

    # HTTP handling.
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        match = _PATH.match(path)
        if not match or match["resource"] not in KINDS:
            raise ApiFailure(404, "NotFound", "the server could not find the requested resource")
        kind = KINDS[match["resource"]]
        if (match["group"] or "") != kind.group or (match["version"] or "v1") != kind.version:
            raise ApiFailure(404, "NotFound", "the server could not find the requested resource")
        ns, name, sub = match["ns"], match["name"], match["sub"]
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update"}.get(
            method, method.lower()
        )
        for denied_verb, resource, namespace in self._deny:
            if denied_verb == verb and resource == kind.resource and namespace in (None, ns):
                target = f'{kind.qualified} "{name}" is forbidden' if name else "forbidden"
                raise ApiFailure(
                    403,
                    "Forbidden",
                    f'{target}: User "system:serviceaccount:tuneloop:tuner" cannot {verb} '
                    f'resource "{kind.resource}{"/" + sub if sub else ""}" in API group '
                    f'"{kind.group}" in the namespace "{ns}"',
                )
        manager = (query.get("fieldManager") or ["unknown"])[0]
        with self._lock:
            if method == "GET" and not name:
                for key in [k for k in self.objects if k[0] == kind.resource and k[1] == ns]:
                    self._settle(*key)
                items = [
                    copy.deepcopy(o)
                    for (r, n, _), o in sorted(self.objects.items())
                    if r == kind.resource and n == ns
                ]
                return 200, {
                    "kind": f"{kind.kind}List",
                    "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": items,
                }
            if method == "POST" and not name:
                if not isinstance(body, dict):
                    raise ApiFailure(400, "BadRequest", "the request body must be an object")
                return 201, copy.deepcopy(self._create(kind, ns, body, manager))
            if not name:
                raise ApiFailure(405, "MethodNotAllowed", f"{method} is not supported here")
            self._settle(kind.resource, ns, name)
            key = (kind.resource, ns, name)
            if method == "PUT" and self._interfere.get(key, 0) > 0 and key in self.objects:
                self._interfere[key] -= 1
                self._bump(self.objects[key])
            current = self.objects.get(key)
            if current is None:
                raise ApiFailure(404, "NotFound", f'{kind.qualified} "{name}" not found')
            if sub == "scale":
                return self._handle_scale(kind, ns, name, method, body, manager)
            if method == "GET":
                return 200, copy.deepcopy(current)
            if method in ("PUT", "PATCH"):
                if not isinstance(body, dict):
                    raise ApiFailure(400, "BadRequest", "the request body must be an object")
                return 200, copy.deepcopy(
                    self._update(kind, ns, name, body, manager, method == "PATCH")
                )
            if method == "DELETE":
                del self.objects[(kind.resource, ns, name)]
                return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        raise ApiFailure(405, "MethodNotAllowed", f"{method} is not supported here")

    def _handle_scale(
        self, kind: Kind, ns: str, name: str, method: str, body: Any, manager: str
    ) -> tuple[int, Any]:
        current = self.objects[(kind.resource, ns, name)]
        if method == "GET":
            return 200, self._scale(current)
        if method not in ("PUT", "PATCH") or not isinstance(body, dict):
            raise ApiFailure(400, "BadRequest", "the scale subresource takes PUT or PATCH")
        if method == "PATCH":
            body = merge_patch(self._scale(current), body)
        sent_rv = (body.get("metadata") or {}).get("resourceVersion")
        replicas = (body.get("spec") or {}).get("replicas", 0)
        if method == "PUT" and sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise ApiFailure(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiFailure(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                f"{json.dumps(replicas)}: must be greater than or equal to 0",
            )
        updated = copy.deepcopy(current)
        updated["spec"]["replicas"] = replicas
        updated["metadata"].pop("resourceVersion")
        stored = self._update(kind, ns, name, updated, manager, patch=False)
        return 200, self._scale(stored)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                api.requests.append((self.command, url.path))
                resource = (_PATH.match(url.path) or {"resource": None})["resource"]
                for seconds, verb, res in list(api._delay):
                    if verb in (None, self.command) and res in (None, resource):
                        api._stopping.wait(seconds)
                faulty, fault_code = api._fault(self.command, resource)
                if faulty and fault_code is None:
                    self.close_connection = True
                    return
                try:
                    if faulty:
                        reason = "TooManyRequests" if fault_code == 429 else "InternalError"
                        raise ApiFailure(int(fault_code or 500), reason, f"injected {fault_code}")
                    body = json.loads(raw) if raw else None
                    code, answer = api.handle(self.command, url.path, parse_qs(url.query), body)
                except json.JSONDecodeError as err:
                    code, answer = 400, _status(400, "BadRequest", f"invalid JSON: {err}")
                except ApiFailure as fail:
                    code, answer = fail.code, _status(fail.code, fail.reason, fail.message)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def deployment(
    namespace: str, name: str, replicas: int = 2, env: dict[str, str] | None = None, args=None
) -> dict[str, Any]:
    """A minimal valid Deployment with one container ``server``."""
    container: dict[str, Any] = {"name": "server", "image": "vllm/vllm-openai:v0.6.3"}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if args:
        container["args"] = list(args)
    labels = {"app": name}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def hpa(namespace: str, name: str, target: str, low: int = 1, high: int = 5, cpu: int = 70):
    """An autoscaling/v2 HPA on Deployment ``target`` with a CPU utilisation target."""
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu},
                    },
                }
            ],
        },
    }
