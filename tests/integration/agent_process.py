"""Running the agent as a process on the fixture trees: its flags, a free port, a quiet server."""

from __future__ import annotations

from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from tests.fixtures.bench_results import write_results
from tests.paths import FIXTURES


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def agent_flags(base_url: str, tmp_path: Path) -> list[str]:
    write_results(tmp_path / "bench.jsonl")  # the state dir's results file
    return [
        "--sysfs",
        str(FIXTURES / "node" / "sys"),
        "--procfs",
        str(FIXTURES / "node" / "proc"),
        "--state-dir",
        str(tmp_path),
        "--gpu-backend",
        "fake",
        "--fake-gpus",
        str(FIXTURES / "gpu" / "two_gpus.json"),
        "--collectors",
        "gpu,numa,rdma,net,inference,bench",
        "--inference-target",
        f"vllm-0={base_url}/vllm.metrics",
        "--inference-target",
        f"tgi-0={base_url}/tgi.metrics",
    ]


class socket_port:
    """A free loopback port (closed again before the agent binds it)."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return int(self._sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
