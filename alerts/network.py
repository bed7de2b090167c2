"""Network alerts: RDMA ports and RoCE congestion, TCP retransmits, iperf3 throughput."""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.model import Alert, Case, Group, Runbook

AGENT_POD = (
    "kubectl -n tuneloop-agent get pods -o wide -l app.kubernetes.io/name=tuneloop-agent "
    "--field-selector spec.nodeName=NODE"
)
AGENT_SCRAPE = (
    "kubectl -n tuneloop-agent exec POD -- tuneloop-agent scrape --config /etc/tuneloop/agent.yaml"
)
RDMA_SCRAPE = f"{AGENT_SCRAPE} | grep tuneloop_rdma_"
NODETUNE_STATUS = (
    "kubectl -n tuneloop-agent exec POD -- tuneloop-agent nodetune status --procfs /host/proc "
    "--journal /var/lib/tuneloop/nodetune-journal.json"
)
CNP_STORM_PER_SECOND = 5000
ECN_STORM_PER_SECOND = 20000
OUT_OF_SEQUENCE_PER_SECOND = 10
SEQUENCE_ERRORS_PER_SECOND = 1
TCP_RETRANSMIT_RATIO = 0.01
IPERF3_BASELINE_SHARE = 0.7

_PORT = 'node="n1",device="mlx5_0",port="1"'
_PORT_LABELS = {"node": "n1", "device": "mlx5_0", "port": "1"}
_CONGESTION = (
    "rate(tuneloop_rdma_cnp_handled_total[5m])",
    "rate(tuneloop_rdma_cnp_sent_total[5m])",
    "rate(tuneloop_rdma_ecn_marked_packets_total[5m])",
    "rate(tuneloop_rdma_port_transmit_bytes_total[5m]) * 8",
)
_CONGESTION_STEPS = (
    "Find the hot spot: congestion on every port of many nodes points to an over-subscribed "
    "switch tier; on one port, to that link or its peer.",
    "Check the switch's PFC/ECN settings with the network team (ECN thresholds too low mark "
    "everything; PFC off turns congestion into loss).",
    "If the tuner recently raised replicas or changed placement, roll it back (below) and see if "
    "the rate drops.",
)


def _rate_alert(
    name: str, metric: str, per_second: float, what: str, window: str, meaning: str, impact: str
) -> Alert:
    return Alert(
        name=name,
        expr=f"rate({metric}[{window}]) > {per_second}",
        severity="warning",
        for_="10m",
        summary=f"An RDMA port sees {what} above its threshold.",
        description=f"{{{{ $labels.device }}}} port {{{{ $labels.port }}}} on {{{{ $labels.node }}}}: "
        f"{{{{ $value | humanize }}}} {what} per second.",
        runbook=Runbook(
            meaning=meaning,
            impact=impact,
            promql=(f"rate({metric}[{window}])", *_CONGESTION, "tuneloop_rdma_port_up"),
            commands=(AGENT_POD, RDMA_SCRAPE),
            mitigation=_CONGESTION_STEPS,
        ),
        fires=Case(
            series=((f"{metric}{{{_PORT}}}", f"0+{int(per_second * 120)}x30"),),
            eval_time="25m",
            labels=_PORT_LABELS,
            description=f"mlx5_0 port 1 on n1: {_humanize(per_second * 2)} {what} per second.",
        ),
        quiet=Case(
            series=((f"{metric}{{{_PORT}}}", f"0+{int(per_second * 30)}x30"),),
            eval_time="25m",
        ),
    )


def _humanize(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.4g}{prefix}"
    return f"{value:.4g}"


GROUPS = [
    Group(
        "tuneloop-network",
        (
            Alert(
                name="TuneloopRdmaPortDown",
                expr="tuneloop_rdma_port_up == 0",
                severity="critical",
                for_="5m",
                summary="An RDMA port is not active.",
                description="{{ $labels.device }} port {{ $labels.port }} on {{ $labels.node }} "
                "has not been ACTIVE for 5 minutes.",
                runbook=Runbook(
                    meaning="The port's logical state is not ACTIVE: the link is down, still "
                    "training, or the subnet manager has not configured it.",
                    impact="Traffic over this port (NCCL, KV-cache transfer between nodes) stops "
                    "or fails over to slower paths; multi-node replicas stall.",
                    promql=(
                        "tuneloop_rdma_port_up",
                        "tuneloop_rdma_port_physical_up",
                        "tuneloop_rdma_port_info",
                        "increase(tuneloop_rdma_port_link_downed_total[1h])",
                    ),
                    commands=(AGENT_POD, RDMA_SCRAPE),
                    mitigation=(
                        "If tuneloop_rdma_port_physical_up is 0, the cable, transceiver or switch "
                        "port is down: ask the network team to check the peer port.",
                        "If the physical link is up but the port is not ACTIVE, check the subnet "
                        "manager (InfiniBand) or the RoCE interface configuration.",
                        "Cordon the node (`kubectl cordon NODE`) while multi-node workloads need "
                        "this port.",
                    ),
                ),
                fires=Case(
                    series=((f"tuneloop_rdma_port_up{{{_PORT}}}", "1 1 0x10"),),
                    eval_time="10m",
                    labels=_PORT_LABELS,
                    description="mlx5_0 port 1 on n1 has not been ACTIVE for 5 minutes.",
                ),
                quiet=Case(
                    series=((f"tuneloop_rdma_port_up{{{_PORT}}}", "1x5 0 1x5"),),
                    eval_time="10m",
                ),
            ),
            Alert(
                name="TuneloopRdmaPortDegradedRate",
                expr="tuneloop_rdma_port_rate_bytes_per_second < max_over_time(tuneloop_rdma_port_rate_bytes_per_second[1d]) and tuneloop_rdma_port_up == 1",
                severity="warning",
                for_="10m",
                summary="An RDMA port runs below the rate it had in the last day.",
                description="{{ $labels.device }} port {{ $labels.port }} on {{ $labels.node }} "
                "runs at {{ $value | humanize }}B/s, below its rate earlier today.",
                runbook=Runbook(
                    meaning="The port negotiated a lower rate than it had in the last 24 hours: "
                    "fewer lanes or a lower speed, usually a dirty or failing cable or optic.",
                    impact="Less bandwidth between nodes: NCCL collectives and KV transfers slow "
                    "down, and iperf3 results drop.",
                    promql=(
                        "tuneloop_rdma_port_rate_bytes_per_second",
                        "max_over_time(tuneloop_rdma_port_rate_bytes_per_second[1d])",
                        "increase(tuneloop_rdma_port_link_error_recovery_total[1h])",
                        "increase(tuneloop_rdma_port_local_link_integrity_errors_total[1h])",
                    ),
                    commands=(AGENT_POD, RDMA_SCRAPE),
                    mitigation=(
                        "Ask the network team to reseat or replace the cable or transceiver of "
                        "this port and its switch peer.",
                        "Until then, cordon the node if it hosts multi-node replicas.",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            f"tuneloop_rdma_port_rate_bytes_per_second{{{_PORT}}}",
                            "50000000000x20 25000000000x20",
                        ),
                        (f"tuneloop_rdma_port_up{{{_PORT}}}", "1x40"),
                    ),
                    eval_time="35m",
                    labels=_PORT_LABELS,
                    description="mlx5_0 port 1 on n1 runs at 25GB/s, below its rate earlier today.",
                ),
                quiet=Case(
                    series=(
                        (f"tuneloop_rdma_port_rate_bytes_per_second{{{_PORT}}}", "50000000000x40"),
                        (f"tuneloop_rdma_port_up{{{_PORT}}}", "1x40"),
                    ),
                    eval_time="35m",
                ),
            ),
            _rate_alert(
                "TuneloopRdmaCnpStorm",
                "tuneloop_rdma_cnp_handled_total",
                CNP_STORM_PER_SECOND,
                "congestion notifications handled",
                "5m",
                "The port's sender keeps receiving RoCE congestion notification packets (CNPs): "
                "the network asks it to slow down, continuously.",
                "DCQCN cuts the sending rate on every CNP; sustained, throughput collapses and "
                "tail latency of cross-node traffic grows.",
            ),
            _rate_alert(
                "TuneloopRdmaEcnStorm",
                "tuneloop_rdma_ecn_marked_packets_total",
                ECN_STORM_PER_SECOND,
                "ECN-marked packets",
                "5m",
                "Switches mark a large share of RoCE packets arriving at this port with ECN: "
                "queues on the path are building.",
                "Each mark makes this node send a CNP; the sender slows down. Sustained, "
                "cross-node bandwidth drops.",
            ),
            _rate_alert(
                "TuneloopRdmaOutOfSequenceRising",
                "tuneloop_rdma_out_of_sequence_total",
                OUT_OF_SEQUENCE_PER_SECOND,
                "out-of-sequence packets",
                "10m",
                "RoCE packets arrive out of order at this port: packets are being lost (and "
                "retransmitted) or take different paths.",
                "Every out-of-sequence packet triggers go-back-N retransmission on lossy RoCE; "
                "goodput drops sharply.",
            ),
            _rate_alert(
                "TuneloopRdmaSequenceErrorsRising",
                "tuneloop_rdma_packet_sequence_errors_total",
                SEQUENCE_ERRORS_PER_SECOND,
                "packet sequence error NAKs",
                "10m",
                "The port receives NAKs for sequence errors: the peer saw gaps in what this node "
                "sent, so packets are being dropped on the way.",
                "Retransmissions and timeouts slow every RDMA transfer through this port.",
            ),
            Alert(
                name="TuneloopTcpRetransmitRatioHigh",
                expr=f"rate(tuneloop_tcp_retransmitted_segments_total[10m]) / rate(tuneloop_tcp_original_data_segments_sent_total[10m]) > {TCP_RETRANSMIT_RATIO}",
                severity="warning",
                for_="15m",
                summary="A node retransmits a high share of its TCP segments.",
                description="{{ $labels.node }} retransmitted {{ $value | humanizePercentage }} "
                "of its TCP data segments over 10 minutes.",
                runbook=Runbook(
                    meaning=f"More than {TCP_RETRANSMIT_RATIO:.0%} of the TCP data segments this "
                    "node sends are retransmissions: packets are lost on the way, or buffers "
                    "overflow.",
                    impact="TCP throughput falls with the square root of the loss rate; requests "
                    "through the balancers and model downloads slow down.",
                    promql=(
                        "rate(tuneloop_tcp_retransmitted_segments_total[10m]) / rate(tuneloop_tcp_original_data_segments_sent_total[10m])",
                        "rate(tuneloop_tcp_lost_retransmits_total[10m])",
                        "rate(tuneloop_tcp_receive_queue_drops_total[10m])",
                        "tuneloop_tcp_rmem_bytes",
                        "tuneloop_tcp_wmem_bytes",
                        "tuneloop_nodetune_sysctl_value",
                    ),
                    commands=(
                        AGENT_POD,
                        f"{AGENT_SCRAPE} | grep tuneloop_tcp_",
                        NODETUNE_STATUS,
                    ),
                    mitigation=(
                        "If the node-tuning journal shows a recent change to TCP buffers, roll it "
                        "back (below); undersized buffers drop segments under load.",
                        "Otherwise compare nodes: one node points to its NIC or cable, all nodes "
                        "to the network; hand it to the network team with the rates.",
                    ),
                ),
                fires=Case(
                    series=(
                        ('tuneloop_tcp_retransmitted_segments_total{node="n1"}', "0+30x30"),
                        ('tuneloop_tcp_original_data_segments_sent_total{node="n1"}', "0+1000x30"),
                    ),
                    eval_time="25m",
                    labels={"node": "n1"},
                    description="n1 retransmitted 3% of its TCP data segments over 10 minutes.",
                ),
                quiet=Case(
                    series=(
                        ('tuneloop_tcp_retransmitted_segments_total{node="n1"}', "0+2x30"),
                        ('tuneloop_tcp_original_data_segments_sent_total{node="n1"}', "0+1000x30"),
                    ),
                    eval_time="25m",
                ),
            ),
            Alert(
                name="TuneloopIperf3BelowBaseline",
                expr=f"min by (cluster, node, peer) (tuneloop_iperf3_throughput_bytes_per_second) < {IPERF3_BASELINE_SHARE} * max by (cluster, node, peer) (max_over_time(tuneloop_iperf3_throughput_bytes_per_second[7d]))",
                severity="warning",
                for_="30m",
                summary="iperf3 throughput to a peer fell below its weekly baseline.",
                description="iperf3 from {{ $labels.node }} to {{ $labels.peer }} measured "
                "{{ $value | humanize }}B/s, under 70% of its best in 7 days.",
                runbook=Runbook(
                    meaning="The last iperf3 test between these nodes gave less than "
                    f"{IPERF3_BASELINE_SHARE:.0%} of the best result of the past week.",
                    impact="The path between the nodes has lost capacity: congestion, a degraded "
                    "link, or a TCP setting that no longer fits.",
                    promql=(
                        "tuneloop_iperf3_throughput_bytes_per_second",
                        "max_over_time(tuneloop_iperf3_throughput_bytes_per_second[7d])",
                        "rate(tuneloop_tcp_retransmitted_segments_total[10m])",
                        "tuneloop_net_core_rmem_max_bytes",
                    ),
                    commands=(
                        AGENT_POD,
                        NODETUNE_STATUS,
                    ),
                    mitigation=(
                        "Check TuneloopTcpRetransmitRatioHigh and the RDMA alerts for the same "
                        "nodes; fix what they point to first.",
                        "If the node-tuning journal shows a recent TCP buffer change, roll it back "
                        "(below) and wait for the next iperf3 run.",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_iperf3_throughput_bytes_per_second{cluster="c1",node="n1",peer="n2",pod="agent-a"}',
                            "1250000000x30 _x60",
                        ),
                        (
                            'tuneloop_iperf3_throughput_bytes_per_second{cluster="c1",node="n1",peer="n2",pod="agent-b"}',
                            "_x30 625000000x60",
                        ),
                    ),
                    eval_time="80m",
                    labels={"cluster": "c1", "node": "n1", "peer": "n2"},
                    description="iperf3 from n1 to n2 measured 625MB/s, under 70% of its best in 7 days.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_iperf3_throughput_bytes_per_second{node="n1",peer="n2"}',
                            "1250000000x30 1000000000x60",
                        ),
                    ),
                    eval_time="80m",
                ),
            ),
        ),
    )
]
