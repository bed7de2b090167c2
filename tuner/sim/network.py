"""The network leg between clients and the balancer: transfer time against the TCP window.

One TCP connection moves at most one window per round trip, so its rate is
``min(link, window / rtt)``: a window below the bandwidth-delay product (BDP) lowers throughput
in proportion. A window far above the BDP only fills the bottleneck's buffer; once it exceeds
``BDP + buffer`` the flow overflows the buffer, loses segments and backs off, and its average rate
falls to ``link * (BDP + buffer) / window`` (a first-order model of the loss sawtooth). So the
best window lies between the BDP and the BDP plus the buffer, as ``tcp_rmem`` tuning guides say.
A transfer takes half a round trip plus ``bytes / rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuneloop.validation import mapping, no_unknown_keys, number


@dataclass(frozen=True)
class NetworkConfig:
    """Link rate (bits/s), round-trip time, TCP window and bottleneck buffer (bytes)."""

    link_bps: float = 10e9
    rtt_s: float = 0.002
    window_bytes: float = 4 * 1024 * 1024
    buffer_bytes: float = 1024 * 1024

    @classmethod
    def from_mapping(cls, data: Any, field: str = "network") -> NetworkConfig:
        """Build from a YAML mapping; errors name the field."""
        raw = mapping(data, field)
        no_unknown_keys(raw, field, set(cls.__dataclass_fields__))
        values = {
            key: number(value, f"{field}.{key}", minimum=0.0, positive=key != "rtt_s")
            for key, value in raw.items()
        }
        return cls(**values)

    @property
    def bdp_bytes(self) -> float:
        """Bandwidth-delay product."""
        return self.link_bps / 8.0 * self.rtt_s

    def throughput_bps(self, window_bytes: float | None = None) -> float:
        """Average rate of one connection with the given window (bits/s)."""
        window = self.window_bytes if window_bytes is None else window_bytes
        if self.rtt_s <= 0:
            return self.link_bps
        limit = self.bdp_bytes + self.buffer_bytes
        if window > limit:
            return self.link_bps * limit / window
        return min(self.link_bps, window * 8.0 / self.rtt_s)

    def transfer_seconds(self, nbytes: float) -> float:
        """Time for one message of ``nbytes`` to cross the leg."""
        return self.rtt_s / 2.0 + nbytes * 8.0 / self.throughput_bps()
