"""The iperf3 server the agent keeps running so that peers can test against this node.

Decisions: the server runs in the foreground as our child (not ``-D``), in its own process
group, so stopping it never leaves an orphan. It counts as started once a listening socket on
its port, owned by the server's own process, shows in ``/proc/PID/net/tcp{,6}`` (read in the
server's network namespace). So readiness is known without connecting to it (a probe would
look like an aborted test to iperf3), and another program on the port is not mistaken for it.
Its stderr goes to a temporary file so that a server that dies at
start (port in use, bad bind address) is reported with iperf3's own message.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from agent.bench.iperf3 import Iperf3Error, Iperf3MissingBinaryError
from agent.bench.process import find_binary, kill_group, netns_prefix

log = logging.getLogger(__name__)

START_TIMEOUT_S = 5.0
_LISTEN = "0A"


class Iperf3ServerError(Iperf3Error):
    """The iperf3 server could not be started."""

    reason = "server_start"


def _socket_inodes(pid: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    try:
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def listening_ports(pid: int, proc: Path = Path("/proc")) -> set[int]:
    """TCP ports that process ``pid`` itself listens on (read in its network namespace)."""
    owned = _socket_inodes(pid, proc)
    ports: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc / str(pid) / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in owned:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Iperf3Server:
    """Supervises one ``iperf3 -s`` process; call :meth:`ensure_running` periodically."""

    def __init__(
        self,
        port: int = 5201,
        bind: str | None = None,
        netns: str | None = None,
        binary: str = "iperf3",
    ) -> None:
        if isinstance(port, bool) or not 1 <= port <= 65535:
            raise ValueError(f"port: expected 1..65535, got {port!r}")
        self.port = port
        self.bind = bind
        self.netns = netns
        self.binary = binary
        self.restarts = 0  # restarts after the first start
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._started_once = False

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def argv(self) -> list[str]:
        """The command line that starts the server."""
        resolved = find_binary(self.binary)
        if resolved is None:
            raise Iperf3MissingBinaryError(
                f"iperf3 binary {self.binary!r} not found (install iperf3)"
            )
        argv = [*netns_prefix(self.netns), resolved, "-s", "-p", str(self.port)]
        if self.bind is not None:
            argv += ["-B", self.bind]
        return argv

    def start(self) -> None:
        """Start the server and wait until it listens; Iperf3ServerError says why it did not."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._reap()
        argv = self.argv()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                message = self._stderr_text() or f"exit status {self._proc.returncode}"
                self._reap()
                raise Iperf3ServerError(f"iperf3 server on port {self.port} exited: {message}")
            if self.port in listening_ports(self._proc.pid):
                if self._started_once:
                    self.restarts += 1
                self._started_once = True
                return
            time.sleep(0.02)
        self._reap()
        raise Iperf3ServerError(
            f"iperf3 server on port {self.port} did not listen within {START_TIMEOUT_S:g}s"
        )

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read(4096).decode(errors="replace").strip()
        return " ".join(text.split())

    def _reap(self) -> None:
        if self._proc is not None:
            kill_group(self._proc)
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stop(self) -> None:
        """Stop the server (and anything in its process group)."""
        with self._lock:
            self._reap()

    def ensure_running(self) -> bool:
        """Start the server if it is not running; True when this call (re)started it."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return False
            self._start_locked()
            return True

    def supervise(self, stop: threading.Event, interval_s: float = 5.0) -> None:
        """Keep the server running until ``stop`` is set; start errors are logged and retried."""
        while not stop.is_set():
            try:
                if self.ensure_running() and self.restarts:
                    log.warning("iperf3 server on port %d had died; restarted", self.port)
            except Iperf3Error as exc:
                log.error("%s (retrying in %gs)", exc, interval_s)
            stop.wait(interval_s)
        self.stop()

    def __enter__(self) -> Iperf3Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
