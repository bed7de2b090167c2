"""TCP buffer tuning across the lab's delayed link: an applier and an iperf3 probe.

Decisions:
- The applier sets one knob, the maximum of ``net.ipv4.tcp_rmem`` and ``net.ipv4.tcp_wmem``
  (``4096 min(131072, max) max``), in *both* namespaces of the link (sender and receiver), through
  the agent's node-tuning reconciler, so the same allowlist, journal and read-back apply as on a
  GPU node. Each change is a new desired-state generation.
- The probe is a Signals backend answering ``iperf3_throughput_bytes_per_second`` by running one
  iperf3 test across the link when asked: on a two-namespace lab there is no continuous traffic to
  read a rate from. A result is reused for ``reuse_s`` seconds, so the loop's rate check and its
  objective read in the same measurement share one test rather than running two.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from agent.bench.iperf3 import Iperf3Error, run_client
from agent.bench.iperf3_server import Iperf3Server
from agent.nodetune.desired import parse_desired
from agent.nodetune.reconciler import Reconciler
from tuner.appliers.base import Applier, ApplierError, KnobClass, Value
from tuner.signals.base import SignalError, SignalRef, Signals

TARGET = "tcp_buffer_max"
KEYS = ("net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem")
THROUGHPUT = "iperf3_throughput_bytes_per_second"


def triple(max_bytes: int) -> str:
    """The ``min default max`` triple for a buffer maximum."""
    return f"4096 {min(131072, max_bytes)} {max_bytes}"


class NetnsBufferApplier(Applier):
    """The TCP buffer maximum in every namespace of ``reconcilers``; one target: ``TARGET``."""

    kind = "netns-tcp-buffers"
    knob_class = KnobClass.COLD

    def __init__(self, reconcilers: Sequence[Reconciler]) -> None:
        if not reconcilers:
            raise ApplierError("netns-tcp-buffers: needs at least one namespace")
        self.reconcilers = list(reconcilers)
        self._generation = int(time.time())

    def _check(self, targets: Sequence[str]) -> None:
        for t in targets:
            if t != TARGET:
                raise ApplierError(f"netns-tcp-buffers: unknown target {t!r} (known: {TARGET})")

    def read(self, targets: list[str]) -> dict[str, Value]:
        self._check(targets)
        maxima = set()
        for rec in self.reconcilers:
            for value in rec.current(list(KEYS)).values():
                maxima.add(int(value.split()[-1]))
        # Namespaces that disagree read as the smallest: that is what limits the transfer.
        return dict.fromkeys(targets, min(maxima))

    def apply(self, desired: Mapping[str, Value]) -> None:
        self._check(list(desired))
        value = desired.get(TARGET)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 4096:
            raise ApplierError(f"netns-tcp-buffers: {TARGET} must be an integer >= 4096")
        self._generation += 1
        state = parse_desired(
            {"generation": self._generation, "sysctls": dict.fromkeys(KEYS, triple(value))}
        )
        for rec in self.reconcilers:
            result = rec.apply(state)
            if not result.ok:
                raise ApplierError(f"netns-tcp-buffers: {rec.fs.describe()}: {result.error}")


class Iperf3Probe(Signals):
    """Throughput across a link from ``client_ns`` to ``server_addr`` in ``server_ns``."""

    def __init__(
        self,
        client_ns: str,
        server_ns: str,
        server_addr: str,
        port: int = 5311,
        *,
        seconds: int = 2,
        reuse_s: float = 1.0,
    ) -> None:
        self.client_ns = client_ns
        self.server = Iperf3Server(port, bind=server_addr, netns=server_ns)
        self.server_addr = server_addr
        self.port = port
        self.seconds = seconds
        self.reuse_s = reuse_s
        self._last: tuple[float, float] | None = None  # (finished at, bytes/s)
        self.tests = 0

    def start(self) -> None:
        self.server.ensure_running()

    def stop(self) -> None:
        self.server.stop()

    def forget(self) -> None:
        """Drop the cached result: the next read runs a new test."""
        self._last = None

    def value(self, ref: SignalRef, window_s: float) -> float | None:
        if ref.signal != THROUGHPUT:
            raise SignalError(
                f"the iperf3 probe answers only signal:{THROUGHPUT}, not {ref.describe()}"
            )
        now = time.monotonic()
        if self._last is not None and now - self._last[0] <= self.reuse_s:
            return self._last[1]
        self.server.ensure_running()
        try:
            result = run_client(
                self.server_addr,
                self.port,
                duration_s=self.seconds,
                netns=self.client_ns,
                timeout_s=self.seconds + 20,
            )
        except Iperf3Error as exc:
            raise SignalError(f"iperf3 to {self.server_addr}:{self.port}: {exc}") from exc
        self.tests += 1
        self._last = (time.monotonic(), float(result.throughput_bps) / 8)
        return self._last[1]


def reconcilers_for(namespaces: Sequence[str], journal_dir: Path) -> list[Reconciler]:
    """One node-tuning reconciler per namespace, journals under ``journal_dir``."""
    from agent.netlab.netns import NETNS_DIR

    return [
        Reconciler(Path("/proc"), journal_dir / f"{name}.json", netns=NETNS_DIR / name)
        for name in namespaces
    ]
