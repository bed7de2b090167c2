"""TCP metrics (procfs): counters from /proc/net/snmp and netstat, and the current net sysctls.

``TCP`` and ``TCP_EXT`` map a column of the ``Tcp:`` and ``TcpExt:`` tables to its metric, and
``SYSCTLS`` maps a scalar sysctl under /proc/sys to its gauge, so adding one is one line here.
"""

from tuneloop.catalog.base import MetricSpec, counter, gauge

TCP_RETRANSMITTED = counter(
    "tuneloop_tcp_retransmitted_segments_total", "TCP segments retransmitted (/proc/net/snmp)."
)
TCP_ESTABLISHED = gauge(
    "tuneloop_tcp_established_connections", "TCP connections in ESTABLISHED or CLOSE-WAIT."
)
TCP_RMEM = gauge(
    "tuneloop_tcp_rmem_bytes",
    "net.ipv4.tcp_rmem: receive buffer min, default and max per socket.",
    "field",
    unit="bytes",
)
TCP_WMEM = gauge(
    "tuneloop_tcp_wmem_bytes",
    "net.ipv4.tcp_wmem: send buffer min, default and max per socket.",
    "field",
    unit="bytes",
)
TCP_CONGESTION_CONTROL = gauge(
    "tuneloop_tcp_congestion_control_info",
    "Always 1; the default TCP congestion control algorithm.",
    "algorithm",
)

# Tcp: column of /proc/net/snmp -> metric.
TCP: dict[str, MetricSpec] = {
    "RetransSegs": TCP_RETRANSMITTED,
    "OutSegs": counter("tuneloop_tcp_sent_segments_total", "TCP segments sent."),
    "InSegs": counter("tuneloop_tcp_received_segments_total", "TCP segments received."),
    "ActiveOpens": counter("tuneloop_tcp_active_opens_total", "Connections opened (connect)."),
    "PassiveOpens": counter("tuneloop_tcp_passive_opens_total", "Connections accepted."),
    "AttemptFails": counter("tuneloop_tcp_attempt_fails_total", "Connection attempts failed."),
    "EstabResets": counter(
        "tuneloop_tcp_established_resets_total", "Established connections reset."
    ),
    "CurrEstab": TCP_ESTABLISHED,
    "InErrs": counter("tuneloop_tcp_receive_errors_total", "Segments received in error."),
    "OutRsts": counter("tuneloop_tcp_resets_sent_total", "Segments sent with RST."),
    "InCsumErrors": counter(
        "tuneloop_tcp_checksum_errors_total", "Segments received with a bad checksum."
    ),
}

# TcpExt: column of /proc/net/netstat -> metric.
TCP_EXT: dict[str, MetricSpec] = {
    "TCPTimeouts": counter("tuneloop_tcp_timeouts_total", "Retransmission timeouts."),
    "TCPLossProbes": counter("tuneloop_tcp_loss_probes_total", "Tail loss probes sent."),
    "TCPSynRetrans": counter("tuneloop_tcp_syn_retransmits_total", "SYN and SYN-ACK retransmits."),
    "TCPFastRetrans": counter("tuneloop_tcp_fast_retransmits_total", "Fast retransmits."),
    "TCPSlowStartRetrans": counter(
        "tuneloop_tcp_slow_start_retransmits_total", "Retransmits in slow start."
    ),
    "TCPLostRetransmit": counter(
        "tuneloop_tcp_lost_retransmits_total", "Retransmitted segments lost again."
    ),
    "TCPSpuriousRTOs": counter(
        "tuneloop_tcp_spurious_rtos_total", "Timeouts later found to be spurious."
    ),
    "TCPOrigDataSent": counter(
        "tuneloop_tcp_original_data_segments_sent_total",
        "Segments with new data sent (the denominator of a retransmit ratio).",
    ),
    "TCPDeliveredCE": counter(
        "tuneloop_tcp_delivered_ce_total", "Segments delivered with an ECN CE mark echoed."
    ),
    "TCPBacklogDrop": counter(
        "tuneloop_tcp_backlog_drops_total", "Segments dropped: socket backlog full."
    ),
    "ListenOverflows": counter(
        "tuneloop_tcp_listen_overflows_total", "Connections dropped: accept queue full."
    ),
    "ListenDrops": counter("tuneloop_tcp_listen_drops_total", "Connection requests dropped."),
    "TCPOFOQueue": counter(
        "tuneloop_tcp_out_of_order_queued_total", "Segments queued out of order."
    ),
    "TCPOFODrop": counter(
        "tuneloop_tcp_out_of_order_drops_total", "Out-of-order segments dropped (no memory)."
    ),
    "TCPRcvQDrop": counter(
        "tuneloop_tcp_receive_queue_drops_total", "Segments dropped: receive queue full."
    ),
    "TCPZeroWindowDrop": counter(
        "tuneloop_tcp_zero_window_drops_total", "Segments dropped: zero receive window."
    ),
    "TCPToZeroWindowAdv": counter(
        "tuneloop_tcp_zero_window_adverts_total", "Times the receive window was closed to zero."
    ),
    "PruneCalled": counter(
        "tuneloop_tcp_receive_prunes_total", "Receive queue prunes under buffer pressure."
    ),
    "TCPRcvCollapsed": counter(
        "tuneloop_tcp_receive_collapsed_total", "Segments collapsed under buffer pressure."
    ),
    "TCPMemoryPressures": counter(
        "tuneloop_tcp_memory_pressures_total", "Times TCP entered memory pressure."
    ),
    "TCPAbortOnMemory": counter(
        "tuneloop_tcp_aborts_on_memory_total", "Connections aborted for lack of memory."
    ),
    "TCPAbortOnTimeout": counter(
        "tuneloop_tcp_aborts_on_timeout_total", "Connections aborted after too many timeouts."
    ),
}

# Scalar sysctl, as a path under /proc/sys -> gauge.
SYSCTLS: dict[str, MetricSpec] = {
    "net/core/rmem_max": gauge(
        "tuneloop_net_core_rmem_max_bytes", "net.core.rmem_max.", unit="bytes"
    ),
    "net/core/wmem_max": gauge(
        "tuneloop_net_core_wmem_max_bytes", "net.core.wmem_max.", unit="bytes"
    ),
    "net/core/rmem_default": gauge(
        "tuneloop_net_core_rmem_default_bytes", "net.core.rmem_default.", unit="bytes"
    ),
    "net/core/wmem_default": gauge(
        "tuneloop_net_core_wmem_default_bytes", "net.core.wmem_default.", unit="bytes"
    ),
    "net/core/netdev_max_backlog": gauge(
        "tuneloop_net_core_netdev_max_backlog", "net.core.netdev_max_backlog (packets)."
    ),
    "net/ipv4/tcp_mtu_probing": gauge(
        "tuneloop_tcp_mtu_probing", "net.ipv4.tcp_mtu_probing (0 off, 1 after a black hole, 2 on)."
    ),
    "net/ipv4/tcp_slow_start_after_idle": gauge(
        "tuneloop_tcp_slow_start_after_idle", "net.ipv4.tcp_slow_start_after_idle (0 or 1)."
    ),
}

# Three-value sysctl (min, default, max) -> gauge with a `field` label.
SYSCTL_TRIPLES: dict[str, MetricSpec] = {
    "net/ipv4/tcp_rmem": TCP_RMEM,
    "net/ipv4/tcp_wmem": TCP_WMEM,
}
CONGESTION_CONTROL_SYSCTL = "net/ipv4/tcp_congestion_control"

SPECS = (
    *TCP.values(),
    *TCP_EXT.values(),
    *SYSCTLS.values(),
    *SYSCTL_TRIPLES.values(),
    TCP_CONGESTION_CONTROL,
)
