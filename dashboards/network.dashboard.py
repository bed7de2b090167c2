"""Network and RDMA: throughput, RoCE congestion and errors, TCP counters and sysctls.

Every RDMA and TCP family the agent exports has a panel; families of one kind share a panel
(a counter drawn as its per-second rate), so the dashboard stays readable.
"""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop import catalog
from tuneloop.catalog import MetricSpec
from tuneloop.generate.panels import dashboard as make
from tuneloop.generate.panels import family_panel, label_variable, panel, rows

S = 'cluster=~"$cluster", node=~"$node"'
P = "{{node}} {{device}}/{{port}}"
R = "tuneloop_rdma_"


def rdma(*names: str) -> list[MetricSpec]:
    return [catalog.get(f"tuneloop_rdma_{n}") for n in names]


def tcp(*names: str) -> list[MetricSpec]:
    return [catalog.get(f"tuneloop_{n}") for n in names]


PORT_ERRORS = rdma(
    "port_symbol_errors_total",
    "port_receive_errors_total",
    "port_receive_remote_physical_errors_total",
    "port_receive_switch_relay_errors_total",
    "port_receive_constraint_errors_total",
    "port_transmit_constraint_errors_total",
    "port_receive_discards_total",
    "port_transmit_discards_total",
    "port_link_downed_total",
    "port_link_error_recovery_total",
    "port_local_link_integrity_errors_total",
    "port_excessive_buffer_overrun_errors_total",
    "port_vl15_dropped_total",
)
TRANSPORT_ERRORS = rdma(
    "cnp_ignored_total",
    "local_ack_timeout_errors_total",
    "out_of_buffer_total",
    "rnr_nak_retry_errors_total",
    "implied_nak_sequence_errors_total",
    "duplicate_requests_total",
    "requester_cqe_errors_total",
    "responder_cqe_errors_total",
    "requester_remote_access_errors_total",
    "responder_remote_access_errors_total",
    "requester_remote_invalid_requests_total",
    "responder_local_length_errors_total",
    "adaptive_retransmits_total",
    "adaptive_retransmit_timeouts_total",
    "slow_restarts_total",
    "icrc_errors_total",
)

dashboard = make(
    "tuneloop / Network and RDMA",
    "RDMA port throughput, congestion and errors; TCP counters and sysctls; iperf3 results.",
    [
        label_variable("cluster", "tuneloop_collector_success"),
        label_variable("node", "tuneloop_collector_success", 'cluster=~"$cluster"'),
    ],
    rows(
        (
            "RDMA",
            [
                panel(
                    "Port throughput",
                    "bps",
                    (
                        f"rate(tuneloop_rdma_port_transmit_bytes_total{{{S}}}[$__rate_interval]) * 8",
                        "tx " + P,
                    ),
                    (
                        f"rate(tuneloop_rdma_port_receive_bytes_total{{{S}}}[$__rate_interval]) * 8",
                        "rx " + P,
                    ),
                ),
                panel(
                    "Port state and rate",
                    "bps",
                    (
                        f"tuneloop_rdma_port_rate_bytes_per_second{{{S}}} * 8"
                        f" * tuneloop_rdma_port_up{{{S}}}",
                        P,
                    ),
                ),
                panel(
                    "Congestion (CNP, ECN)",
                    "pps",
                    (
                        f"rate(tuneloop_rdma_cnp_sent_total{{{S}}}[$__rate_interval])",
                        "CNP sent " + P,
                    ),
                    (
                        f"rate(tuneloop_rdma_cnp_handled_total{{{S}}}[$__rate_interval])",
                        "CNP handled " + P,
                    ),
                    (
                        f"rate(tuneloop_rdma_ecn_marked_packets_total{{{S}}}[$__rate_interval])",
                        "ECN marked " + P,
                    ),
                ),
                family_panel(
                    "Packets",
                    rdma(
                        "port_transmit_packets_total",
                        "port_receive_packets_total",
                        "port_unicast_transmit_packets_total",
                        "port_unicast_receive_packets_total",
                        "port_multicast_transmit_packets_total",
                        "port_multicast_receive_packets_total",
                    ),
                    S,
                    P,
                    prefix=R,
                    unit="pps",
                ),
                family_panel(
                    "RDMA operations received",
                    rdma("read_requests_total", "write_requests_total", "atomic_requests_total"),
                    S,
                    P,
                    prefix=R,
                    unit="ops",
                ),
                family_panel("Port errors and discards", PORT_ERRORS, S, P, prefix=R),
                family_panel("RoCE transport errors", TRANSPORT_ERRORS, S, P, prefix=R),
                family_panel(
                    "Transmit wait (ticks without credits)",
                    rdma("port_transmit_wait_total"),
                    S,
                    P,
                    prefix=R,
                ),
                panel(
                    "Port and device state",
                    "short",
                    (f"tuneloop_rdma_port_physical_up{{{S}}}", "physical up " + P),
                    (
                        f"tuneloop_rdma_port_info{{{S}}}",
                        P + " {{link_layer}} {{state}} {{phys_state}}",
                    ),
                    (
                        f"tuneloop_rdma_device_info{{{S}}}",
                        "{{node}} {{device}} {{hca_type}} fw {{fw_ver}} {{board_id}}",
                    ),
                ),
                family_panel(
                    "Counter read errors",
                    rdma("stat_read_errors_total", "device_read_errors_total"),
                    S,
                    "{{node}} {{device}} {{port}}",
                    prefix=R,
                ),
                panel(
                    "Out-of-sequence and sequence errors",
                    "pps",
                    (
                        f"rate(tuneloop_rdma_out_of_sequence_total{{{S}}}[$__rate_interval])",
                        "out of sequence " + P,
                    ),
                    (
                        f"rate(tuneloop_rdma_packet_sequence_errors_total{{{S}}}[$__rate_interval])",
                        "sequence errors " + P,
                    ),
                ),
            ],
        ),
        (
            "TCP",
            [
                panel(
                    "Retransmit ratio",
                    "percentunit",
                    (
                        f"rate(tuneloop_tcp_retransmitted_segments_total{{{S}}}[$__rate_interval]) / rate(tuneloop_tcp_original_data_segments_sent_total{{{S}}}[$__rate_interval])",
                        "{{node}}",
                    ),
                ),
                panel(
                    "TCP buffer settings",
                    "bytes",
                    (f"tuneloop_tcp_rmem_bytes{{{S}}}", "rmem {{field}} {{node}}"),
                    (f"tuneloop_tcp_wmem_bytes{{{S}}}", "wmem {{field}} {{node}}"),
                    (f"tuneloop_net_core_rmem_max_bytes{{{S}}}", "rmem_max {{node}}"),
                ),
                family_panel(
                    "TCP connections",
                    tcp(
                        "tcp_active_opens_total",
                        "tcp_passive_opens_total",
                        "tcp_attempt_fails_total",
                        "tcp_established_resets_total",
                        "tcp_aborts_on_timeout_total",
                        "tcp_aborts_on_memory_total",
                    ),
                    S,
                    "{{node}}",
                    prefix="tuneloop_tcp_",
                ),
                family_panel(
                    "Established connections",
                    tcp("tcp_established_connections"),
                    S,
                    "{{node}}",
                    prefix="tuneloop_tcp_",
                ),
                family_panel(
                    "TCP segments",
                    tcp(
                        "tcp_sent_segments_total",
                        "tcp_received_segments_total",
                        "tcp_receive_errors_total",
                        "tcp_resets_sent_total",
                        "tcp_checksum_errors_total",
                        "tcp_delivered_ce_total",
                    ),
                    S,
                    "{{node}}",
                    prefix="tuneloop_tcp_",
                    unit="pps",
                ),
                family_panel(
                    "TCP retransmissions by kind",
                    tcp(
                        "tcp_timeouts_total",
                        "tcp_loss_probes_total",
                        "tcp_syn_retransmits_total",
                        "tcp_fast_retransmits_total",
                        "tcp_slow_start_retransmits_total",
                        "tcp_lost_retransmits_total",
                        "tcp_spurious_rtos_total",
                    ),
                    S,
                    "{{node}}",
                    prefix="tuneloop_tcp_",
                ),
                family_panel(
                    "TCP drops and buffer pressure",
                    tcp(
                        "tcp_backlog_drops_total",
                        "tcp_listen_overflows_total",
                        "tcp_listen_drops_total",
                        "tcp_out_of_order_queued_total",
                        "tcp_out_of_order_drops_total",
                        "tcp_receive_queue_drops_total",
                        "tcp_zero_window_drops_total",
                        "tcp_zero_window_adverts_total",
                        "tcp_receive_prunes_total",
                        "tcp_receive_collapsed_total",
                        "tcp_memory_pressures_total",
                    ),
                    S,
                    "{{node}}",
                    prefix="tuneloop_tcp_",
                ),
                family_panel(
                    "Core socket buffer sysctls",
                    tcp(
                        "net_core_wmem_max_bytes",
                        "net_core_rmem_default_bytes",
                        "net_core_wmem_default_bytes",
                    ),
                    S,
                    "{{node}}",
                    prefix="tuneloop_net_core_",
                ),
                panel(
                    "Other TCP sysctls",
                    "short",
                    (f"tuneloop_net_core_netdev_max_backlog{{{S}}}", "netdev_max_backlog {{node}}"),
                    (f"tuneloop_tcp_mtu_probing{{{S}}}", "tcp_mtu_probing {{node}}"),
                    (
                        f"tuneloop_tcp_slow_start_after_idle{{{S}}}",
                        "slow_start_after_idle {{node}}",
                    ),
                    (
                        f"tuneloop_tcp_congestion_control_info{{{S}}}",
                        "congestion control {{algorithm}} {{node}}",
                    ),
                ),
            ],
        ),
        (
            "iperf3 between nodes",
            [
                panel(
                    "iperf3 throughput to peers",
                    "Bps",
                    (
                        f"tuneloop_iperf3_throughput_bytes_per_second{{{S}}}",
                        "{{node}} to {{peer}}",
                    ),
                    (
                        f"tuneloop_iperf3_receive_throughput_bytes_per_second{{{S}}}",
                        "{{peer}} to {{node}}",
                    ),
                ),
                family_panel(
                    "iperf3 retransmits",
                    tcp("iperf3_retransmits"),
                    S,
                    "{{node}} {{peer}} {{direction}}",
                    prefix="tuneloop_iperf3_",
                ),
                family_panel(
                    "iperf3 mean RTT",
                    tcp("iperf3_mean_rtt_seconds"),
                    S,
                    "{{node}} {{peer}} {{direction}}",
                    prefix="tuneloop_iperf3_",
                ),
                family_panel(
                    "iperf3 CPU use (1 = one core)",
                    tcp("iperf3_cpu_local_ratio", "iperf3_cpu_remote_ratio"),
                    S,
                    "{{node}} {{peer}} {{direction}}",
                    prefix="tuneloop_iperf3_",
                    unit="short",
                ),
                panel(
                    "Time since the last iperf3 test",
                    "s",
                    (
                        f"time() - tuneloop_iperf3_last_run_timestamp_seconds{{{S}}}",
                        "{{node}} {{peer}} {{direction}}",
                    ),
                ),
                family_panel(
                    "iperf3 failures",
                    tcp("iperf3_failures_total"),
                    S,
                    "{{node}} {{peer}} {{reason}}",
                    prefix="tuneloop_iperf3_",
                ),
            ],
        ),
    ),
    tags=["network", "rdma"],
)
