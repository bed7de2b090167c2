"""Node benchmark metrics (iperf3, perf).

iperf3 series describe the last test per peer. ``direction`` is ``send`` when this node sent
(a normal client test) and ``receive`` when the peer sent (iperf3 ``-R``). The contract metric
``tuneloop_iperf3_throughput_bytes_per_second{peer}`` is the send direction; the receive
direction has its own gauge. Throughput is in bytes per second (iperf3's bits / 8), the base
unit promtool's lint and the contract ask for. perf series describe the last ``perf stat`` window.
"""

from tuneloop.catalog.base import counter, gauge

IPERF3_THROUGHPUT = gauge(
    "tuneloop_iperf3_throughput_bytes_per_second",
    "Throughput of the last iperf3 test to the peer.",
    "peer",
    unit="bytes_per_second",
)
IPERF3_RECEIVE_THROUGHPUT = gauge(
    "tuneloop_iperf3_receive_throughput_bytes_per_second",
    "Throughput of the last reverse iperf3 test: the peer sending to this node.",
    "peer",
    unit="bytes_per_second",
)
IPERF3_RETRANSMITS = gauge(
    "tuneloop_iperf3_retransmits",
    "TCP retransmits of the sender during the last iperf3 test.",
    "peer",
    "direction",
)
IPERF3_MEAN_RTT = gauge(
    "tuneloop_iperf3_mean_rtt_seconds",
    "Mean smoothed RTT of the sending streams during the last iperf3 test.",
    "peer",
    "direction",
    unit="seconds",
)
IPERF3_CPU_LOCAL = gauge(
    "tuneloop_iperf3_cpu_local_ratio",
    "CPU time per wall second of the local iperf3 during the last test (1 = one core).",
    "peer",
    "direction",
    unit="ratio",
)
IPERF3_CPU_REMOTE = gauge(
    "tuneloop_iperf3_cpu_remote_ratio",
    "CPU time per wall second of the peer's iperf3 during the last test (1 = one core).",
    "peer",
    "direction",
    unit="ratio",
)
IPERF3_LAST_RUN = gauge(
    "tuneloop_iperf3_last_run_timestamp_seconds",
    "Unix time the last successful iperf3 test to the peer started.",
    "peer",
    "direction",
    unit="seconds",
)
IPERF3_FAILURES = counter(
    "tuneloop_iperf3_failures_total",
    "iperf3 tests that gave no result (busy, unreachable, timeout, missing_binary, ...).",
    "peer",
    "reason",
)
PERF_EVENT_RATE = gauge(
    "tuneloop_perf_event_per_second",
    "Events counted per second over the last perf stat window (unit as perf reports it).",
    "event",
)
PERF_EVENT_SUPPORTED = gauge(
    "tuneloop_perf_event_supported",
    "1 if the machine could count the event in the last perf stat run, else 0.",
    "event",
    "status",
)
PERF_IPC = gauge(
    "tuneloop_perf_instructions_per_cycle",
    "Instructions per cycle over the last perf stat window (absent without both counters).",
)
PERF_WINDOW = gauge(
    "tuneloop_perf_window_seconds",
    "Length of the last perf stat window.",
    unit="seconds",
)
PERF_LAST_RUN = gauge(
    "tuneloop_perf_last_run_timestamp_seconds",
    "Unix time the last perf stat window started.",
    unit="seconds",
)

SPECS = (
    IPERF3_THROUGHPUT,
    IPERF3_RECEIVE_THROUGHPUT,
    IPERF3_RETRANSMITS,
    IPERF3_MEAN_RTT,
    IPERF3_CPU_LOCAL,
    IPERF3_CPU_REMOTE,
    IPERF3_LAST_RUN,
    IPERF3_FAILURES,
    PERF_EVENT_RATE,
    PERF_EVENT_SUPPORTED,
    PERF_IPC,
    PERF_WINDOW,
    PERF_LAST_RUN,
)
