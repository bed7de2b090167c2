"""RDMA / RoCE metrics (/sys/class/infiniband)."""

from agent.catalog.base import counter, gauge

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

SPECS = (RDMA_PORT_UP, RDMA_TRANSMIT_BYTES, RDMA_RECEIVE_BYTES, RDMA_CNP_SENT, RDMA_CNP_HANDLED)
