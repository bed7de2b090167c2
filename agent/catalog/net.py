"""TCP metrics (procfs)."""

from agent.catalog.base import counter

TCP_RETRANSMITTED = counter(
    "tuneloop_tcp_retransmitted_segments_total", "TCP segments retransmitted (/proc/net/snmp)."
)

SPECS = (TCP_RETRANSMITTED,)
