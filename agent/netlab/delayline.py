"""A userspace delay line between two tun devices, for kernels without ``sch_netem``.

Two tun devices are created in the root namespace (``/dev/net/tun``, ``TUNSETIFF`` with
``IFF_TUN | IFF_NO_PI``) and then moved into the two test namespaces; the file descriptors stay
with us. A separate process (``python -m agent.netlab.delayline``, so the test process's GIL
never throttles it) reads each packet from one tun, holds it in a FIFO until its release time,
and writes it to the other tun. Because the delay is constant the FIFO stays in release order,
so a deque is enough; an optional rate adds serialisation time per packet (a link that is busy
until ``max(arrival, busy_until) + bits / rate``), as netem's ``rate`` does.

Speed: with ``offload`` the tun devices also get ``IFF_VNET_HDR`` and ``TUNSETOFFLOAD``
(checksum and TSO), so the kernel hands over up to 64 KiB TCP super-packets with a virtio-net
header instead of MTU-sized ones, and the receiving tun accepts them as they are (as a VM's NIC
would). That cuts the per-packet Python work by up to 7x at MTU 9000.

Bounds: each direction holds at most ``limit_bytes`` (default 64 MiB); beyond that packets are
dropped and counted, like a full router queue. The process dies with its parent
(``PR_SET_PDEATHSIG``), and the tun devices vanish when it does, so a killed test leaves no
relay behind; on SIGTERM it prints its counters as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import select
import signal
import struct
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
VNET_HDR_LEN = 10  # struct virtio_net_hdr, the tun default
READ_SIZE = 65536 + VNET_HDR_LEN
BATCH = 64  # packets read per wake-up per side, so releases are never starved
PR_SET_PDEATHSIG = 1


def open_tun(name: str, offload: bool) -> int:
    """Create tun device ``name`` and return its file descriptor (owned by the caller)."""
    if not 0 < len(name) <= 15:
        raise ValueError(f"tun name {name!r} must be 1..15 characters")
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload else 0)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
        if offload:
            fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
    except OSError as exc:
        os.close(fd)
        raise OSError(exc.errno, f"cannot create tun device {name}: {exc.strerror}") from exc
    return fd


@dataclass
class Direction:
    """One direction's queue and counters."""

    src: int
    dst: int
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    queued_bytes: int = 0
    busy_until: float = 0.0
    packets: int = 0
    bytes: int = 0
    dropped: int = 0


@dataclass
class Stats:
    """Counters reported on exit."""

    a_to_b_packets: int
    a_to_b_bytes: int
    a_to_b_dropped: int
    b_to_a_packets: int
    b_to_a_bytes: int
    b_to_a_dropped: int


class Relay:
    """The delay loop between two tun file descriptors."""

    def __init__(
        self,
        fd_a: int,
        fd_b: int,
        delay_s: float,
        rate_bps: float | None = None,
        limit_bytes: int = 64 << 20,
    ) -> None:
        if delay_s < 0 or (rate_bps is not None and rate_bps <= 0) or limit_bytes <= 0:
            raise ValueError("delay must be >= 0, rate and limit > 0")
        self.delay = delay_s
        self.rate = rate_bps
        self.limit = limit_bytes
        self.sides = {fd_a: Direction(fd_a, fd_b), fd_b: Direction(fd_b, fd_a)}
        self.a, self.b = self.sides[fd_a], self.sides[fd_b]
        self.stopping = False

    def _receive(self, side: Direction, now: float) -> None:
        for _ in range(BATCH):
            try:
                packet = os.read(side.src, READ_SIZE)
            except BlockingIOError:
                return
            size = len(packet)
            if side.queued_bytes + size > self.limit:
                side.dropped += 1
                continue
            if self.rate is None:
                release = now + self.delay
            else:
                side.busy_until = max(now, side.busy_until) + size * 8 / self.rate
                release = side.busy_until + self.delay
            side.queue.append((release, packet))
            side.queued_bytes += size

    def _release(self, side: Direction, now: float) -> None:
        queue = side.queue
        while queue and queue[0][0] <= now:
            _, packet = queue.popleft()
            side.queued_bytes -= len(packet)
            try:
                os.write(side.dst, packet)
            except OSError:  # peer namespace gone or queue full: the packet is lost
                side.dropped += 1
                continue
            side.packets += 1
            side.bytes += len(packet)

    def run(self, max_seconds: float | None = None) -> Stats:
        """Relay until stopped (SIGTERM sets ``stopping``) or ``max_seconds`` pass."""
        poller = select.epoll()
        for fd in self.sides:
            os.set_blocking(fd, False)
            poller.register(fd, select.EPOLLIN)
        end = None if max_seconds is None else time.monotonic() + max_seconds
        clock = time.monotonic
        try:
            while not self.stopping:
                now = clock()
                if end is not None and now >= end:
                    break
                heads = [s.queue[0][0] for s in self.sides.values() if s.queue]
                timeout = max(0.0, min(heads) - now) if heads else 0.2
                try:
                    events = poller.poll(timeout)
                except InterruptedError:
                    continue
                now = clock()
                for fd, _ in events:
                    self._receive(self.sides[fd], now)
                self._release(self.a, now)
                self._release(self.b, now)
        finally:
            poller.close()
        return self.stats()

    def stats(self) -> Stats:
        """Counters so far."""
        a, b = self.a, self.b
        return Stats(a.packets, a.bytes, a.dropped, b.packets, b.bytes, b.dropped)


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    """Entry of the relay process: ``--fd-a N --fd-b M --delay-ms D [--rate-mbit R]``."""
    parser = argparse.ArgumentParser(prog="python -m agent.netlab.delayline")
    parser.add_argument("--fd-a", type=int, required=True)
    parser.add_argument("--fd-b", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--rate-mbit", type=float, default=None)
    parser.add_argument("--limit-bytes", type=int, default=64 << 20)
    parser.add_argument("--parent", type=int, default=None)
    args = parser.parse_args(argv)
    if args.parent is not None:
        _die_with_parent(args.parent)
    rate = args.rate_mbit * 1e6 if args.rate_mbit is not None else None
    relay = Relay(args.fd_a, args.fd_b, args.delay_ms / 1000.0, rate, args.limit_bytes)

    def stop(signum: int, frame: object) -> None:
        relay.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stats = relay.run()
    print(json.dumps(asdict(stats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
