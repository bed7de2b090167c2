"""Network and RDMA: throughput, RoCE congestion, sequence errors, TCP, iperf3 between nodes."""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.panels import dashboard as make
from tuneloop.generate.panels import label_variable, panel, rows

S = 'cluster=~"$cluster", node=~"$node"'
P = "{{node}} {{device}}/{{port}}"

dashboard = make(
    "tuneloop / Network and RDMA",
    "RDMA port throughput and congestion, TCP retransmits and buffers, iperf3 results.",
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
                panel(
                    "iperf3 throughput to peers",
                    "bps",
                    (f"tuneloop_iperf3_throughput_bits_per_second{{{S}}}", "{{node}} to {{peer}}"),
                ),
            ],
        ),
    ),
    tags=["network", "rdma"],
)
