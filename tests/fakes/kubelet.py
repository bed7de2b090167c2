"""A kubelet pod-resources endpoint: v1.PodResourcesLister/List over a real unix socket."""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc


class FakeKubelet:
    """A grpcio server on a unix socket serving v1.PodResourcesLister/List."""

    def __init__(self, socket: Path, answer: bytes) -> None:
        self.answer = answer
        self.calls = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_unary_rpc_method_handler(
            self._list, request_deserializer=lambda b: b, response_serializer=lambda b: b
        )
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("v1.PodResourcesLister", {"List": handler}),)
        )
        self.server.add_insecure_port(f"unix://{socket}")

    def _list(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        assert request == b"", "ListPodResourcesRequest has no fields"
        self.calls += 1
        return self.answer

    def __enter__(self) -> FakeKubelet:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(None)
