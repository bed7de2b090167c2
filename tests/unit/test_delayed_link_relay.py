"""The delay line's relay loop, driven through socket pairs instead of tun devices."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from agent.netlab.delayline import Relay, Stats


class Harness:
    """Relay between two SEQPACKET socket pairs (packet boundaries kept, like tun)."""

    def __init__(self, delay_s: float, rate_bps: float | None = None, limit: int = 1 << 20) -> None:
        self.a_host, self.a_relay = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.b_host, self.b_relay = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for sock in (self.a_relay, self.b_relay):  # room for a burst
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.relay = Relay(self.a_relay.fileno(), self.b_relay.fileno(), delay_s, rate_bps, limit)
        self.stats: list[Stats] = []
        self.thread = threading.Thread(target=lambda: self.stats.append(self.relay.run(10.0)))
        self.thread.start()

    def receive(self, sock: socket.socket, count: int) -> list[tuple[float, bytes]]:
        sock.settimeout(5)
        got = []
        for _ in range(count):
            data = sock.recv(65536)
            got.append((time.monotonic(), data))
        return got

    def close(self) -> Stats:
        self.relay.stopping = True
        self.thread.join(5)
        for sock in (self.a_host, self.a_relay, self.b_host, self.b_relay):
            sock.close()
        return self.stats[0]


@pytest.fixture
def make() -> Iterator[type[Harness]]:
    made: list[Harness] = []

    def factory(*args: float | None) -> Harness:
        harness = Harness(*args)  # type: ignore[arg-type]
        made.append(harness)
        return harness

    yield factory  # type: ignore[misc]
    for harness in made:
        if harness.thread.is_alive():
            harness.close()


def test_each_packet_is_held_for_the_delay_and_order_kept(make) -> None:
    line = make(0.05)
    sent = []
    for i in range(20):
        sent.append(time.monotonic())
        line.a_host.send(f"packet-{i}".encode())
    got = line.receive(line.b_host, 20)
    assert [data for _, data in got] == [f"packet-{i}".encode() for i in range(20)]
    assert all(at - s >= 0.05 for (at, _), s in zip(got, sent, strict=True))
    line.b_host.send(b"reply")
    assert line.receive(line.a_host, 1)[0][1] == b"reply"
    stats = line.close()
    assert (stats.a_to_b_packets, stats.b_to_a_packets, stats.a_to_b_dropped) == (20, 1, 0)
    assert stats.a_to_b_bytes == sum(len(f"packet-{i}") for i in range(20))


def test_rate_adds_serialisation_time(make) -> None:
    line = make(0.0, 8e6)  # 8 Mbit/s: 10 000 bytes take 10 ms
    start = time.monotonic()
    for _ in range(10):
        line.a_host.send(b"x" * 10_000)
    got = line.receive(line.b_host, 10)
    assert got[-1][0] - start >= 0.095
    assert got[0][0] - start >= 0.0095
    line.close()


def test_queue_limit_drops_and_counts(make) -> None:
    line = make(0.2, None, 50_000)  # room for five 10 000-byte packets in flight
    for _ in range(8):
        line.a_host.send(b"y" * 10_000)
    assert len(line.receive(line.b_host, 5)) == 5
    stats = line.close()
    assert stats.a_to_b_packets == 5 and stats.a_to_b_dropped == 3


def test_bad_parameters_rejected() -> None:
    with pytest.raises(ValueError, match="delay must be >= 0"):
        Relay(0, 1, -1.0)
    with pytest.raises(ValueError, match="rate and limit > 0"):
        Relay(0, 1, 0.0, rate_bps=0.0)
