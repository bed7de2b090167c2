"""RDMA / RoCE metrics (/sys/class/infiniband).

``PORT_COUNTERS`` and ``HW_COUNTERS`` map a file under a port's ``counters/`` or ``hw_counters/``
directory to the metric it feeds, so exporting one more counter is one line here.
"""

from tuneloop.catalog.base import MetricSpec, counter, gauge

RDMA_PORT_UP = gauge("tuneloop_rdma_port_up", "1 when the port state is ACTIVE.", "device", "port")
RDMA_TRANSMIT_BYTES = counter(
    "tuneloop_rdma_port_transmit_bytes_total",
    "Bytes sent (port_xmit_data times the 4-lane factor).",
    "device",
    "port",
    unit="bytes",
)
RDMA_RECEIVE_BYTES = counter(
    "tuneloop_rdma_port_receive_bytes_total",
    "Bytes received (port_rcv_data times the 4-lane factor).",
    "device",
    "port",
    unit="bytes",
)
RDMA_CNP_SENT = counter(
    "tuneloop_rdma_cnp_sent_total",
    "RoCE congestion notification packets sent (np_cnp_sent).",
    "device",
    "port",
)
RDMA_CNP_HANDLED = counter(
    "tuneloop_rdma_cnp_handled_total",
    "RoCE congestion notification packets handled (rp_cnp_handled).",
    "device",
    "port",
)
RDMA_PORT_PHYSICAL_UP = gauge(
    "tuneloop_rdma_port_physical_up",
    "1 when the physical link state is LinkUp.",
    "device",
    "port",
)
RDMA_PORT_INFO = gauge(
    "tuneloop_rdma_port_info",
    "Always 1; one series per port carrying its link layer and states.",
    "device",
    "port",
    "link_layer",
    "state",
    "phys_state",
)
RDMA_PORT_RATE = gauge(
    "tuneloop_rdma_port_rate_bytes_per_second",
    "Negotiated link rate of the port (a 400 Gb/s link reads 5e10).",
    "device",
    "port",
    unit="bytes_per_second",
)
RDMA_DEVICE_INFO = gauge(
    "tuneloop_rdma_device_info",
    "Always 1; one series per RDMA device carrying its HCA type, firmware and board.",
    "device",
    "hca_type",
    "fw_ver",
    "board_id",
)
RDMA_COUNTER_READ_ERRORS = counter(
    "tuneloop_rdma_stat_read_errors_total",
    "Port files (counters, state, rate) that could not be read or parsed; the rest still export.",
    "device",
    "port",
)
RDMA_DEVICE_READ_ERRORS = counter(
    "tuneloop_rdma_device_read_errors_total",
    "Reads of a device directory or its port list that failed.",
    "device",
)


def _port(name: str, help: str, unit: str = "") -> MetricSpec:
    return counter(name, help, "device", "port", unit=unit)


# ports/<n>/counters/<file> -> metric (port_xmit_data and port_rcv_data count 4-byte words).
PORT_COUNTERS: dict[str, MetricSpec] = {
    "port_xmit_data": RDMA_TRANSMIT_BYTES,
    "port_rcv_data": RDMA_RECEIVE_BYTES,
    "port_xmit_packets": _port("tuneloop_rdma_port_transmit_packets_total", "Packets sent."),
    "port_rcv_packets": _port("tuneloop_rdma_port_receive_packets_total", "Packets received."),
    "unicast_xmit_packets": _port(
        "tuneloop_rdma_port_unicast_transmit_packets_total", "Unicast packets sent."
    ),
    "unicast_rcv_packets": _port(
        "tuneloop_rdma_port_unicast_receive_packets_total", "Unicast packets received."
    ),
    "multicast_xmit_packets": _port(
        "tuneloop_rdma_port_multicast_transmit_packets_total", "Multicast packets sent."
    ),
    "multicast_rcv_packets": _port(
        "tuneloop_rdma_port_multicast_receive_packets_total", "Multicast packets received."
    ),
    "symbol_error": _port("tuneloop_rdma_port_symbol_errors_total", "Minor link errors."),
    "port_rcv_errors": _port(
        "tuneloop_rdma_port_receive_errors_total", "Packets received with errors."
    ),
    "port_rcv_remote_physical_errors": _port(
        "tuneloop_rdma_port_receive_remote_physical_errors_total",
        "Packets received marked with the EBP delimiter.",
    ),
    "port_rcv_switch_relay_errors": _port(
        "tuneloop_rdma_port_receive_switch_relay_errors_total",
        "Packets discarded because they could not be forwarded.",
    ),
    "port_rcv_constraint_errors": _port(
        "tuneloop_rdma_port_receive_constraint_errors_total",
        "Packets received discarded by partition or raw-packet constraints.",
    ),
    "port_xmit_constraint_errors": _port(
        "tuneloop_rdma_port_transmit_constraint_errors_total",
        "Packets not sent because of partition or raw-packet constraints.",
    ),
    "port_rcv_discards": _port(
        "tuneloop_rdma_port_receive_discards_total", "Received packets discarded."
    ),
    "port_xmit_discards": _port(
        "tuneloop_rdma_port_transmit_discards_total", "Outbound packets discarded."
    ),
    "port_xmit_wait": _port(
        "tuneloop_rdma_port_transmit_wait_total",
        "Ticks the port had data to send but no flow-control credits.",
    ),
    "link_downed": _port(
        "tuneloop_rdma_port_link_downed_total", "Times the link error recovery failed."
    ),
    "link_error_recovery": _port(
        "tuneloop_rdma_port_link_error_recovery_total", "Successful link error recoveries."
    ),
    "local_link_integrity_errors": _port(
        "tuneloop_rdma_port_local_link_integrity_errors_total",
        "Times the local physical errors passed the threshold.",
    ),
    "excessive_buffer_overrun_errors": _port(
        "tuneloop_rdma_port_excessive_buffer_overrun_errors_total",
        "Consecutive flow-control update periods with a buffer overrun.",
    ),
    "VL15_dropped": _port(
        "tuneloop_rdma_port_vl15_dropped_total", "Subnet management packets dropped."
    ),
}

# ports/<n>/hw_counters/<file> -> metric (mlx5 and other RoCE drivers).
HW_COUNTERS: dict[str, MetricSpec] = {
    "np_cnp_sent": RDMA_CNP_SENT,
    "rp_cnp_handled": RDMA_CNP_HANDLED,
    "rp_cnp_ignored": _port(
        "tuneloop_rdma_cnp_ignored_total", "Congestion notification packets ignored."
    ),
    "np_ecn_marked_roce_packets": _port(
        "tuneloop_rdma_ecn_marked_packets_total", "RoCE packets received with an ECN mark."
    ),
    "out_of_sequence": _port(
        "tuneloop_rdma_out_of_sequence_total", "Out-of-sequence packets received."
    ),
    "packet_seq_err": _port(
        "tuneloop_rdma_packet_sequence_errors_total", "NAK sequence errors received."
    ),
    "local_ack_timeout_err": _port(
        "tuneloop_rdma_local_ack_timeout_errors_total", "ACK timer expirations on the sender."
    ),
    "out_of_buffer": _port(
        "tuneloop_rdma_out_of_buffer_total", "Packets dropped for lack of a receive WQE."
    ),
    "rnr_nak_retry_err": _port(
        "tuneloop_rdma_rnr_nak_retry_errors_total", "Receiver-not-ready NAKs received."
    ),
    "implied_nak_seq_err": _port(
        "tuneloop_rdma_implied_nak_sequence_errors_total",
        "Read responses implying a lost packet.",
    ),
    "duplicate_request": _port(
        "tuneloop_rdma_duplicate_requests_total", "Duplicate requests received."
    ),
    "req_cqe_error": _port(
        "tuneloop_rdma_requester_cqe_errors_total", "Requester completions with an error."
    ),
    "resp_cqe_error": _port(
        "tuneloop_rdma_responder_cqe_errors_total", "Responder completions with an error."
    ),
    "req_remote_access_errors": _port(
        "tuneloop_rdma_requester_remote_access_errors_total",
        "Remote access errors seen by the requester.",
    ),
    "resp_remote_access_errors": _port(
        "tuneloop_rdma_responder_remote_access_errors_total",
        "Remote access errors seen by the responder.",
    ),
    "req_remote_invalid_request": _port(
        "tuneloop_rdma_requester_remote_invalid_requests_total",
        "Invalid-request NAKs received by the requester.",
    ),
    "resp_local_length_error": _port(
        "tuneloop_rdma_responder_local_length_errors_total",
        "Responder length errors (message larger than the posted buffer).",
    ),
    "roce_adp_retrans": _port(
        "tuneloop_rdma_adaptive_retransmits_total", "Adaptive retransmissions (RoCE)."
    ),
    "roce_adp_retrans_to": _port(
        "tuneloop_rdma_adaptive_retransmit_timeouts_total",
        "Adaptive retransmissions after a timeout (RoCE).",
    ),
    "roce_slow_restart": _port(
        "tuneloop_rdma_slow_restarts_total", "Times slow restart was used (RoCE)."
    ),
    "rx_read_requests": _port("tuneloop_rdma_read_requests_total", "RDMA read requests received."),
    "rx_write_requests": _port(
        "tuneloop_rdma_write_requests_total", "RDMA write requests received."
    ),
    "rx_atomic_requests": _port("tuneloop_rdma_atomic_requests_total", "Atomic requests received."),
    "rx_icrc_encapsulated": _port(
        "tuneloop_rdma_icrc_errors_total", "RoCE packets received with an ICRC error."
    ),
}

SPECS = (
    RDMA_PORT_UP,
    RDMA_PORT_PHYSICAL_UP,
    RDMA_PORT_INFO,
    RDMA_PORT_RATE,
    RDMA_DEVICE_INFO,
    RDMA_COUNTER_READ_ERRORS,
    RDMA_DEVICE_READ_ERRORS,
    *PORT_COUNTERS.values(),
    *HW_COUNTERS.values(),
)
