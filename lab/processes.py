"""Starting and stopping the lab's real programs: free ports, readiness waits, process groups.

Decisions:
- Every program runs in its own session (``start_new_session``), so it is the leader of its own
  process group and stopping it (``killpg``) also stops whatever it forked (nginx workers, a
  shell's children). SIGTERM first, SIGKILL after a grace period.
- A process that must not outlive its starter (a pytest fixture) is started with
  ``die_with_parent``: the kernel sends it SIGTERM when the starter dies (``PR_SET_PDEATHSIG``),
  so even a SIGKILLed test run leaves nothing behind. ``tuneloop-lab up`` does not set it, since
  the lab must outlive the command; ``lab down`` (or the next ``up`` in the same directory) stops
  it from the state file.
- A pid in a state file is only trusted together with the process's start time: a pid reused by
  an unrelated process after a reboot or a long pause is never signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.05
) -> None:
    """Poll ``check`` until it is true; TimeoutError naming ``what`` after ``timeout_s``.

    Exceptions from ``check`` count as "not yet", except RuntimeError, which means "never" (a
    process that exited) and is raised at once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except RuntimeError:
            raise
        except Exception:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:g}s")
        time.sleep(step_s)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ProcRecord:
    """A started program as the state file lists it."""

    name: str
    pid: int
    argv: list[str]
    log: str
    started: float  # the process's start time (psutil create_time) to tell a reused pid apart
    ports: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, source: str) -> ProcRecord:
        """Parse one entry; ValueError names ``source`` and the bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a process entry must be a mapping, got {data!r}")
        try:
            return cls(
                name=str(data["name"]),
                pid=int(data["pid"]),
                argv=[str(a) for a in data["argv"]],
                log=str(data["log"]),
                started=float(data["started"]),
                ports={str(k): int(v) for k, v in dict(data.get("ports", {})).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: bad process entry {data!r}: {exc!r}") from None

    def alive(self) -> bool:
        """True while this very process (same pid and start time) runs and is not a zombie."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.started) > 0.5:
                return False
            return proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    die_with_parent: bool = False,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ports: dict[str, int] | None = None,
) -> tuple[subprocess.Popen[bytes], ProcRecord]:
    """Start ``argv`` in its own session with output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
            env=env,
            cwd=cwd,
        )
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        started = time.time()
    record = ProcRecord(name, proc.pid, list(argv), str(log), started, dict(ports or {}))
    return proc, record


def exited(proc: subprocess.Popen[bytes], record: ProcRecord) -> RuntimeError | None:
    """A RuntimeError with the log's tail when ``proc`` has exited, else None."""
    if proc.poll() is None:
        return None
    tail = ""
    with contextlib.suppress(OSError):
        tail = Path(record.log).read_text(errors="replace")[-2000:]
    return RuntimeError(f"{record.name} exited with status {proc.returncode}: {tail}")


def stop_group(pid: int, timeout_s: float = 5.0) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``timeout_s``; reap if ours."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pgid, os.WNOHANG)  # reap the leader when it is our child
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_record(record: ProcRecord, timeout_s: float = 5.0) -> bool:
    """Stop a recorded process group if it is still that process; True when one was stopped."""
    if not record.alive():
        return False
    stop_group(record.pid, timeout_s)
    return True


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """Terminate a child started without its own session (then kill it) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=timeout_s)


def stop_pid(pid: int, timeout_s: float = 5.0) -> None:
    """Stop a process by pid: SIGTERM, then SIGKILL after ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
