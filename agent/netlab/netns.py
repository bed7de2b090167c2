"""Network namespaces and veth pairs for tests, always cleaned up.

Names carry a prefix and the owning process id (``tl-<pid hex>-<random>``), so a janitor can tell
a stale namespace (its owner is gone, e.g. a test run killed with SIGKILL) from one that a
concurrent run still uses, and removes only the stale ones. Needs root and ``ip`` (iproute2).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

PREFIX = "tl-"
NETNS_DIR = Path("/run/netns")


class NetlabError(RuntimeError):
    """A namespace or link operation failed; the message has the command and its stderr."""


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """Run ``ip ARGS`` (inside ``netns`` when given); stdout, or NetlabError with stderr."""
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise NetlabError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def exec_prefix(netns: str) -> list[str]:
    """Argv prefix that runs a command inside ``netns``."""
    return ["ip", "netns", "exec", netns]


def unique_name(tag: str = "") -> str:
    """A fresh namespace name that records this process as its owner."""
    return f"{PREFIX}{os.getpid():x}-{secrets.token_hex(3)}{tag}"


def owner_pid(name: str) -> int | None:
    """The owner process id encoded in a namespace name, or None if it is not ours."""
    if not name.startswith(PREFIX):
        return None
    try:
        return int(name[len(PREFIX) :].split("-", 1)[0], 16)
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces() -> list[str]:
    """Names of the named network namespaces."""
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def janitor() -> list[str]:
    """Delete namespaces whose owner process is gone; returns the names deleted."""
    removed = []
    for name in list_namespaces():
        pid = owner_pid(name)
        if pid is not None and not _alive(pid):
            delete_namespace(name)
            removed.append(name)
    return removed


def create_namespace(name: str) -> None:
    """Create ``name`` with loopback up."""
    ip("netns", "add", name)
    try:
        ip("link", "set", "lo", "up", netns=name)
    except NetlabError:
        delete_namespace(name)
        raise


def delete_namespace(name: str) -> None:
    """Delete ``name`` (killing what still runs in it); no error if it is already gone."""
    if name not in list_namespaces():
        return
    pids = ip("netns", "pids", name, check=False).split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
    ip("netns", "delete", name, check=False)


class Namespace:
    """A network namespace that exists inside the ``with`` block (or until ``delete()``)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or unique_name()
        self._created = False

    def create(self) -> Namespace:
        """Create it."""
        create_namespace(self.name)
        self._created = True
        return self

    def delete(self) -> None:
        """Delete it and everything still running inside."""
        if self._created:
            delete_namespace(self.name)
            self._created = False

    @property
    def ns_file(self) -> Path:
        """The namespace file, for ``setns(2)`` (e.g. node tuning's ``netns``)."""
        return NETNS_DIR / self.name

    def run(self, argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside, capture its output, raise NetlabError on failure."""
        cmd = [*exec_prefix(self.name), *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise NetlabError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.returncode}")
        return proc

    def __enter__(self) -> Namespace:
        return self.create()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.delete()


def add_veth(ns_a: str, ns_b: str, dev_a: str, dev_b: str, mtu: int = 1500) -> None:
    """A veth pair with ``dev_a`` in ``ns_a`` and ``dev_b`` in ``ns_b``, both up."""
    for dev in (dev_a, dev_b):
        if len(dev) > 15:
            raise NetlabError(f"interface name {dev!r} is longer than 15 characters")
    ip("link", "add", dev_a, "netns", ns_a, "mtu", str(mtu), "type", "veth", "peer", "name", dev_b,
       "netns", ns_b, "mtu", str(mtu))  # fmt: skip
    ip("link", "set", dev_a, "up", netns=ns_a)
    ip("link", "set", dev_b, "up", netns=ns_b)


def address(netns: str, dev: str, local: str, peer: str, prefix: int = 32) -> None:
    """Give ``dev`` in ``netns`` the address ``local`` with a point-to-point route to ``peer``."""
    ip("addr", "add", f"{local}/{prefix}", "peer", f"{peer}/{prefix}", "dev", dev, netns=netns)
    ip("link", "set", dev, "up", netns=netns)


def spawn_holder(name: str, seconds: int = 600) -> subprocess.Popen[bytes]:
    """A ``sleep`` living in namespace ``name``; ``/proc/<pid>`` is then a procfs root for it.

    Returns once the process has joined the namespace (so its ``ns/net`` is the namespace's).
    The caller kills it; deleting the namespace also does.
    """
    holder = subprocess.Popen([*exec_prefix(name), "sleep", str(seconds)])
    target = os.stat(NETNS_DIR / name).st_ino
    for _ in range(500):  # bounded: 5 s
        try:
            if os.stat(f"/proc/{holder.pid}/ns/net").st_ino == target:
                return holder
        except FileNotFoundError:
            break
        time.sleep(0.01)
    holder.kill()
    holder.wait()
    raise NetlabError(f"sleep did not join namespace {name} within 5 s")
