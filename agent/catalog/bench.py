"""Node benchmark metrics (iperf3, perf)."""

from agent.catalog.base import gauge

IPERF3_THROUGHPUT = gauge(
    "tuneloop_iperf3_throughput_bits_per_second",
    "Throughput of the last iperf3 test to the peer.",
    "peer",
    unit="bits_per_second",
)

SPECS = (IPERF3_THROUGHPUT,)
