"""Read and write sysctls under a procfs root, optionally inside another network namespace.

Key ``net.ipv4.tcp_rmem`` maps to ``{procfs}/sys/net/ipv4/tcp_rmem``. Tests point ``procfs`` at a
fixture tree; the agent uses ``/proc``.

Network namespaces (verified on Linux 6.x): ``/proc/sys/net`` shows the namespace of the task
that *opens* the file, not of the process a path names. There is no ``/proc/<pid>/sys``, so a
procfs root of ``/proc/<pid>`` cannot reach another namespace's sysctls by path alone. What does
work is opening the file from a thread that has joined the namespace with ``setns(2)``: namespaces
are per thread, so a short-lived helper thread joins it, opens, reads or writes, and exits, and
the rest of the process never leaves the host namespace. ``netns`` names the namespace file
(``/run/netns/NAME`` or ``/proc/<pid>/ns/net``). As a convenience, a procfs root of the form
``/proc/<pid>`` is read as "the network namespace of that process": the namespace file becomes
``/proc/<pid>/ns/net`` and the files are opened under the parent ``/proc``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
_KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$")


class SysctlError(OSError):
    """A sysctl could not be read or written; the message names the key and the file."""


def key_path(procfs: Path, key: str) -> Path:
    """``{procfs}/sys/`` plus the key with dots as slashes; rejects keys that could escape."""
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"{key!r} is not a sysctl key like net.ipv4.tcp_rmem")
    return procfs / "sys" / Path(*key.split("."))


def _setns(ns_file: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(ns_file, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns_file}): {os.strerror(err)}")
    finally:
        os.close(fd)


def run_in_netns(ns_file: Path, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a helper thread that has joined the network namespace ``ns_file``."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            _setns(ns_file)
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="netns-sysctl", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


class SysctlFS:
    """Sysctl access under ``procfs``; in the namespace ``netns`` when given."""

    def __init__(self, procfs: Path = Path("/proc"), netns: Path | None = None) -> None:
        procfs = Path(procfs)
        if netns is None and procfs.name.isdigit() and (procfs / "ns" / "net").exists():
            netns = procfs / "ns" / "net"
            procfs = procfs.parent
        self.procfs = procfs
        self.netns = Path(netns) if netns is not None else None

    def path(self, key: str) -> Path:
        """The file that holds ``key``."""
        return key_path(self.procfs, key)

    def _call(self, fn: Callable[[], T]) -> T:
        if self.netns is None:
            return fn()
        return run_in_netns(self.netns, fn)

    def exists(self, key: str) -> bool:
        """Whether the key exists on the target (global keys are absent in some namespaces)."""
        path = self.path(key)
        return self._call(path.exists)

    def read(self, key: str) -> str:
        """The raw text of ``key`` (as the kernel prints it, trailing newline stripped)."""
        path = self.path(key)

        def do() -> str:
            with open(path, encoding="ascii") as fh:
                return fh.read().rstrip("\n")

        try:
            return self._call(do)
        except (OSError, UnicodeDecodeError) as exc:
            raise SysctlError(errno.EIO, f"{key}: cannot read {path}: {exc}") from exc

    def write(self, key: str, value: str) -> None:
        """Write ``value`` to ``key`` in one ``write(2)``, as ``sysctl -w`` does."""
        path = self.path(key)
        data = (value + "\n").encode("ascii")

        def do() -> None:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            try:
                written = os.write(fd, data)
            finally:
                os.close(fd)
            if written != len(data):
                raise OSError(errno.EIO, f"short write ({written} of {len(data)} bytes)")

        try:
            self._call(do)
        except OSError as exc:
            raise SysctlError(exc.errno or errno.EIO, f"{key}: cannot write {path}: {exc}") from exc

    def describe(self) -> str:
        """Where this writes, for messages."""
        where = f"namespace {self.netns}" if self.netns else "the current namespace"
        return f"{self.procfs}/sys in {where}"
