"""DelayedLink: two test hosts (network namespaces) joined by a link with a set one-way delay.

Backend: ``tc netem`` on a veth pair where the kernel has ``sch_netem`` (probed once, in a
throwaway namespace), otherwise the userspace tun delay line (:mod:`agent.netlab.delayline`).
Either way each direction gets ``delay_ms`` (so the RTT is twice that) and, optionally, a rate.

Addresses come from TEST-NET-1 (RFC 5737, 192.0.2.0/24, reserved for documentation): they exist
only inside the two namespaces, as a point-to-point pair, so they can never collide with or
leak onto a real network. Side A is 192.0.2.1, side B is 192.0.2.2.

Clean-up: ``__exit__`` (also on exceptions) stops the relay and deletes both namespaces; the
relay dies with its parent if the test process is killed, and ``__enter__`` first runs the
janitor, which removes namespaces whose owning process is gone.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import subprocess
import sys
from types import TracebackType
from typing import Literal

from agent.netlab import netns
from agent.netlab.delayline import open_tun
from agent.netlab.netns import NetlabError

ADDR_A = "192.0.2.1"
ADDR_B = "192.0.2.2"
Backend = Literal["auto", "netem", "tun"]


@functools.cache
def netem_available() -> bool:
    """Whether ``tc qdisc add ... netem`` works here (tried in a throwaway namespace)."""
    with netns.Namespace(netns.unique_name("-probe")) as probe:
        proc = subprocess.run(
            [*netns.exec_prefix(probe.name), "tc", "qdisc", "add", "dev", "lo", "root", "netem",
             "delay", "1ms"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        return proc.returncode == 0


class DelayedLink:
    """Namespaces ``.a`` and ``.b`` at ``.addr_a`` / ``.addr_b``, ``delay_ms`` apart each way."""

    def __init__(
        self,
        delay_ms: float,
        rate_mbit: float | None = None,
        mtu: int = 9000,
        *,
        backend: Backend = "auto",
        offload: bool = True,
    ) -> None:
        if delay_ms < 0:
            raise ValueError(f"delay_ms must be >= 0, got {delay_ms}")
        if rate_mbit is not None and rate_mbit <= 0:
            raise ValueError(f"rate_mbit must be positive, got {rate_mbit}")
        if not 576 <= mtu <= 65535:
            raise ValueError(f"mtu must be 576..65535, got {mtu}")
        self.delay_ms = delay_ms
        self.rate_mbit = rate_mbit
        self.mtu = mtu
        self.requested = backend
        self.offload = offload
        base = netns.unique_name()
        self.a = f"{base}-a"
        self.b = f"{base}-b"
        self.addr_a = ADDR_A
        self.addr_b = ADDR_B
        self.backend: str = ""
        self._relay: subprocess.Popen[str] | None = None
        self._created: list[str] = []
        self.relay_stats: dict[str, int] = {}

    def __enter__(self) -> DelayedLink:
        netns.janitor()
        try:
            for name in (self.a, self.b):
                netns.create_namespace(name)
                self._created.append(name)
            use_netem = self.requested == "netem" or (
                self.requested == "auto" and netem_available()
            )
            if use_netem:
                self._setup_netem()
            else:
                self._setup_tun()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _setup_netem(self) -> None:
        self.backend = "netem"
        netns.add_veth(self.a, self.b, "tl-a", "tl-b", self.mtu)
        ends = ((self.a, "tl-a", ADDR_A, ADDR_B), (self.b, "tl-b", ADDR_B, ADDR_A))
        for ns, dev, local, peer in ends:
            netns.address(ns, dev, local, peer)
            args = ["qdisc", "add", "dev", dev, "root", "netem", "delay", f"{self.delay_ms}ms"]
            if self.rate_mbit is not None:
                args += ["rate", f"{self.rate_mbit}mbit"]
            cmd = [*netns.exec_prefix(ns), "tc", *args, "limit", "100000"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
            if proc.returncode != 0:
                raise NetlabError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")

    def _setup_tun(self) -> None:
        self.backend = "tun"
        tag = secrets.token_hex(3)
        fds: list[int] = []
        try:
            ends = ((self.a, "a", ADDR_A, ADDR_B), (self.b, "b", ADDR_B, ADDR_A))
            for ns, side, local, peer in ends:
                dev = f"tl{tag}{side}"
                fds.append(open_tun(dev, self.offload))
                netns.ip("link", "set", dev, "netns", ns)
                netns.ip("link", "set", dev, "mtu", str(self.mtu), netns=ns)
                netns.address(ns, dev, local, peer)
            cmd = [sys.executable, "-m", "agent.netlab.delayline", "--fd-a", str(fds[0]),
                   "--fd-b", str(fds[1]), "--delay-ms", str(self.delay_ms),
                   "--parent", str(os.getpid())]  # fmt: skip
            if self.rate_mbit is not None:
                cmd += ["--rate-mbit", str(self.rate_mbit)]
            self._relay = subprocess.Popen(
                cmd, pass_fds=fds, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        finally:
            for fd in fds:  # the relay holds its own copies; ours would keep the devices alive
                _close(fd)

    def close(self) -> None:
        """Stop the relay and delete the namespaces (safe to call twice)."""
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.terminate()
            try:
                out, err = relay.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                relay.kill()
                out, err = relay.communicate()
            lines = out.strip().splitlines()
            if lines:
                try:
                    self.relay_stats = json.loads(lines[-1])
                except json.JSONDecodeError:
                    self.relay_stats = {}
            if relay.returncode not in (0, -15) and err.strip():
                raise NetlabError(f"delay line exited {relay.returncode}: {err.strip()}")
        while self._created:
            netns.delete_namespace(self._created.pop())

    def relay_alive(self) -> bool:
        """Whether the tun relay process runs (False for netem)."""
        return self._relay is not None and self._relay.poll() is None


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
