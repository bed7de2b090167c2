"""The kubelet pod-resources API (v1): which pod and container holds which device.

``v1.PodResourcesLister/List`` over the kubelet's unix socket (default
``/var/lib/kubelet/pod-resources/kubelet.sock``), called with grpcio's generic unary call and
the hand-written codec below. Only the fields the agent uses are decoded (pod name, namespace,
container name, resource name, device IDs, device NUMA nodes); the rest is skipped. The encoder
is the same schema written out: a kubelet stand-in for tests and the local lab speaks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from agent.podattr import wire

DEFAULT_SOCKET = Path("/var/lib/kubelet/pod-resources/kubelet.sock")
SERVICE = "v1.PodResourcesLister"
LIST_METHOD = f"/{SERVICE}/List"
_MAX_MESSAGE = 16 * 1024 * 1024  # what kubelet's own clients allow


@dataclass(frozen=True)
class ContainerDevices:
    """Devices of one resource (e.g. nvidia.com/gpu) allocated to a container."""

    resource_name: str
    device_ids: tuple[str, ...]
    numa_nodes: tuple[int, ...] = ()


@dataclass(frozen=True)
class ContainerResources:
    """One container and its devices."""

    name: str
    devices: tuple[ContainerDevices, ...] = ()


@dataclass(frozen=True)
class PodResources:
    """One pod as the kubelet reports it: name, namespace, containers (no UID in v1)."""

    name: str
    namespace: str
    containers: tuple[ContainerResources, ...] = ()


class PodResourcesError(Exception):
    """The pod-resources call failed; the message is one line naming the socket."""


# -- codec --------------------------------------------------------------------------------


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_devices(data: bytes) -> ContainerDevices:
    resource, ids, nodes = "", [], []
    for number, _, value in wire.fields(data):
        if number == 1:
            resource = wire.as_text(value, number)
        elif number == 2:
            ids.append(wire.as_text(value, number))
        elif number == 3:  # TopologyInfo { repeated NUMANode nodes = 1; }
            for n, _, node in wire.fields(wire.as_message(value, number)):
                if n == 1:  # NUMANode { int64 ID = 1; } -- proto3 leaves out ID 0
                    node_id = 0
                    for m, wt, raw in wire.fields(wire.as_message(node, n)):
                        if m == 1 and wt == wire.VARINT and isinstance(raw, int):
                            node_id = _signed64(raw)
                    nodes.append(node_id)
    return ContainerDevices(resource, tuple(ids), tuple(nodes))


def _decode_container(data: bytes) -> ContainerResources:
    name, devices = "", []
    for number, _, value in wire.fields(data):
        if number == 1:
            name = wire.as_text(value, number)
        elif number == 2:
            devices.append(_decode_devices(wire.as_message(value, number)))
    return ContainerResources(name, tuple(devices))


def _decode_pod(data: bytes) -> PodResources:
    name, namespace, containers = "", "", []
    for number, _, value in wire.fields(data):
        if number == 1:
            name = wire.as_text(value, number)
        elif number == 2:
            namespace = wire.as_text(value, number)
        elif number == 3:
            containers.append(_decode_container(wire.as_message(value, number)))
    return PodResources(name, namespace, tuple(containers))


def decode_list_response(data: bytes) -> list[PodResources]:
    """Parse a ListPodResourcesResponse."""
    return [
        _decode_pod(wire.as_message(value, number))
        for number, _, value in wire.fields(data)
        if number == 1
    ]


def _encode_devices(dev: ContainerDevices) -> bytes:
    out = wire.field_string(1, dev.resource_name)
    out += b"".join(wire.field_string(2, i) for i in dev.device_ids)
    if dev.numa_nodes:
        nodes = b"".join(wire.field_bytes(1, wire.field_varint(1, n)) for n in dev.numa_nodes)
        out += wire.field_bytes(3, nodes)
    return out


def _encode_container(c: ContainerResources) -> bytes:
    return wire.field_string(1, c.name) + b"".join(
        wire.field_bytes(2, _encode_devices(d)) for d in c.devices
    )


def encode_list_response(pods: list[PodResources]) -> bytes:
    """Serialise a ListPodResourcesResponse."""
    out = b""
    for pod in pods:
        body = wire.field_string(1, pod.name) + wire.field_string(2, pod.namespace)
        body += b"".join(wire.field_bytes(3, _encode_container(c)) for c in pod.containers)
        out += wire.field_bytes(1, body)
    return out


def encode_list_request() -> bytes:
    """ListPodResourcesRequest has no fields."""
    return b""


# -- client -------------------------------------------------------------------------------


class PodResourcesClient:
    """Calls ``List`` on the kubelet's pod-resources socket; one channel, reused."""

    def __init__(self, socket: Path = DEFAULT_SOCKET, timeout: float = 2.0) -> None:
        self.socket = socket
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            f"unix://{socket.absolute()}",
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                # a restarted kubelet should be picked up within a refresh or two
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 5000),
            ],
        )
        self._list = self._channel.unary_unary(
            LIST_METHOD,
            request_serializer=lambda _: encode_list_request(),
            response_deserializer=decode_list_response,
        )

    def list(self) -> list[PodResources]:
        """All pods with their containers' devices; PodResourcesError on any failure."""
        try:
            pods: list[PodResources] = self._list(None, timeout=self.timeout)
        except grpc.RpcError as err:
            code = err.code() if isinstance(err, grpc.Call) else None
            detail = err.details() if isinstance(err, grpc.Call) else str(err)
            name = code.name if code is not None else "error"
            raise PodResourcesError(
                f"pod-resources List on {self.socket} failed: {name}: {detail}"
            ) from None
        return pods

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()
