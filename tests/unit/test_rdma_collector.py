import os
import shutil
from pathlib import Path

import pytest

from agent.collectors.base import CollectorError
from agent.collectors.rdma import RdmaCollector, parse_rate, parse_state
from tests.fixtures.bignode import HW_COUNTER_FILES, PORT_COUNTER_FILES, build_big_node
from tests.unit.exposition import exported
from tuneloop.catalog import ALL
from tuneloop.catalog.rdma import HW_COUNTERS, PORT_COUNTERS

NODE = Path(__file__).parents[1] / "fixtures" / "node"
P0 = ("device=mlx5_0", "port=1")
P1 = ("device=mlx5_1", "port=1")
P2 = ("device=mlx5_2", "port=1")


@pytest.fixture
def sysfs(tmp_path):
    """A writable copy of the fixture sysfs (symlinks kept as links)."""
    shutil.copytree(NODE / "sys", tmp_path / "sys", symlinks=True)
    return tmp_path / "sys"


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("100 Gb/sec (4X EDR)\n", 100e9),
        ("200 Gb/sec (4X HDR)", 200e9),
        ("400 Gb/sec (4X NDR)", 400e9),
        ("2.5 Gb/sec (1X SDR)", 2.5e9),
        ("25 Gb/sec (1X EDR)", 25e9),
        ("56 Gb/sec (4X FDR)", 56e9),
    ],
)
def test_parse_rate(text, bps):
    assert parse_rate(text) == bps


@pytest.mark.parametrize("bad", ["", "fast", "Gb/sec 100", "100 Mb/sec"])
def test_bad_rate(bad):
    with pytest.raises(ValueError, match="is not like '200 Gb/sec"):
        parse_rate(bad)


def test_parse_state():
    assert parse_state("4: ACTIVE\n") == (4, "ACTIVE")
    assert parse_state("5: LinkUp") == (5, "LinkUp")
    with pytest.raises(ValueError, match="not like '4: ACTIVE'"):
        parse_state("ACTIVE")


def test_bytes_apply_the_four_lane_factor():
    m = exported(RdmaCollector(NODE / "sys"))
    assert m[("tuneloop_rdma_port_transmit_bytes_total", *P0)] == 4 * 1_000_000_000
    assert m[("tuneloop_rdma_port_receive_bytes_total", *P0)] == 4 * 2_500_000_000
    assert m[("tuneloop_rdma_port_transmit_bytes_total", *P2)] == 4 * 123_456_789
    assert m[("tuneloop_rdma_port_receive_bytes_total", *P2)] == 4 * 987_654_321
    # packet counters are not scaled
    assert m[("tuneloop_rdma_port_transmit_packets_total", *P0)] == 7_000_000
    assert m[("tuneloop_rdma_port_receive_packets_total", *P0)] == 9_000_000


def test_state_rate_and_link_layer():
    m = exported(RdmaCollector(NODE / "sys"))
    assert m[("tuneloop_rdma_port_up", *P0)] == 1
    assert m[("tuneloop_rdma_port_up", *P1)] == 0
    assert m[("tuneloop_rdma_port_physical_up", *P1)] == 0
    assert m[("tuneloop_rdma_port_up", *P2)] == 1
    assert m[("tuneloop_rdma_port_rate_bytes_per_second", *P0)] == 200e9 / 8
    assert m[("tuneloop_rdma_port_rate_bytes_per_second", *P2)] == 100e9 / 8
    info = {k[1:] for k, v in m.items() if k[0] == "tuneloop_rdma_port_info" and v == 1}
    assert info == {
        ("device=mlx5_0", "link_layer=Ethernet", "phys_state=LinkUp", "port=1", "state=ACTIVE"),
        ("device=mlx5_1", "link_layer=Ethernet", "phys_state=Disabled", "port=1", "state=DOWN"),
        ("device=mlx5_2", "link_layer=InfiniBand", "phys_state=LinkUp", "port=1", "state=ACTIVE"),
    }
    assert (
        m[
            (
                "tuneloop_rdma_device_info",
                "board_id=MT_2180110032",
                "device=mlx5_2",
                "fw_ver=12.28.2006",
                "hca_type=MT4115",
            )
        ]
        == 1
    )


def test_roce_hw_counters():
    m = exported(RdmaCollector(NODE / "sys"))
    assert m[("tuneloop_rdma_cnp_sent_total", *P0)] == 1234
    assert m[("tuneloop_rdma_cnp_handled_total", *P0)] == 5678
    assert m[("tuneloop_rdma_ecn_marked_packets_total", *P0)] == 4321
    assert m[("tuneloop_rdma_out_of_sequence_total", *P0)] == 17
    assert m[("tuneloop_rdma_packet_sequence_errors_total", *P0)] == 4
    assert m[("tuneloop_rdma_local_ack_timeout_errors_total", *P0)] == 2
    assert m[("tuneloop_rdma_out_of_buffer_total", *P0)] == 9
    assert m[("tuneloop_rdma_cnp_sent_total", *P1)] == 7
    # the InfiniBand HCA has no hw_counters directory: none of those series, and no error
    assert not [k for k in m if k[1:] == P2 and k[0] in {s.name for s in HW_COUNTERS.values()}]
    assert m[("tuneloop_rdma_stat_read_errors_total", *P2)] == 0


def test_na_counter_is_skipped_and_counted_the_rest_exports():
    collector = RdmaCollector(NODE / "sys")
    m = exported(collector)
    assert ("tuneloop_rdma_port_symbol_errors_total", *P1) not in m
    assert m[("tuneloop_rdma_port_symbol_errors_total", *P0)] == 3
    assert m[("tuneloop_rdma_port_transmit_bytes_total", *P1)] == 100
    assert m[("tuneloop_rdma_port_receive_bytes_total", *P1)] == 200
    assert m[("tuneloop_rdma_stat_read_errors_total", *P1)] == 1
    assert m[("tuneloop_rdma_stat_read_errors_total", *P0)] == 0
    # a counter: every refresh that meets the bad file adds one
    assert exported(collector)[("tuneloop_rdma_stat_read_errors_total", *P1)] == 2


def test_unreadable_files_and_device_are_isolated(sysfs):
    port = sysfs / "class" / "infiniband" / "mlx5_0" / "ports" / "1"
    (port / "counters" / "port_rcv_errors").unlink()
    os.symlink("../../../../gone", port / "counters" / "port_rcv_errors")  # broken link
    (port / "hw_counters" / "out_of_buffer").unlink()
    (port / "hw_counters" / "out_of_buffer").mkdir()  # a directory where a file belongs
    (port / "rate").write_text("Invalid argument\n")
    os.symlink(
        "../../devices/pci0000:00/0000:00:02.0/infiniband/mlx5_9",
        sysfs / "class" / "infiniband" / "mlx5_9",
    )  # device vanished mid-read
    m = exported(RdmaCollector(sysfs))
    assert m[("tuneloop_rdma_stat_read_errors_total", *P0)] == 3
    assert m[("tuneloop_rdma_device_read_errors_total", "device=mlx5_9")] == 1
    assert m[("tuneloop_rdma_device_read_errors_total", "device=mlx5_0")] == 0
    assert ("tuneloop_rdma_port_receive_errors_total", *P0) not in m
    assert ("tuneloop_rdma_out_of_buffer_total", *P0) not in m
    assert ("tuneloop_rdma_port_rate_bytes_per_second", *P0) not in m
    # everything else about the same port is still there
    assert m[("tuneloop_rdma_port_up", *P0)] == 1
    assert m[("tuneloop_rdma_cnp_sent_total", *P0)] == 1234
    assert m[("tuneloop_rdma_port_transmit_bytes_total", *P0)] == 4e9
    assert m[("tuneloop_rdma_port_transmit_bytes_total", *P2)] == 4 * 123_456_789


def test_a_fifo_in_place_of_a_counter_is_refused_the_rest_exports(sysfs):
    port = sysfs / "class" / "infiniband" / "mlx5_0" / "ports" / "1"
    (port / "hw_counters" / "np_cnp_sent").unlink()
    os.mkfifo(port / "hw_counters" / "np_cnp_sent")
    (port / "counters" / "port_xmit_data").write_text("9" * (200 * 1024))  # read to a bound
    collector = RdmaCollector(sysfs)
    m = exported(collector)  # a plain read of the FIFO would block here forever
    assert ("tuneloop_rdma_cnp_sent_total", *P0) not in m
    assert ("tuneloop_rdma_port_transmit_bytes_total", *P0) not in m
    assert m[("tuneloop_rdma_port_up", *P0)] == 1
    assert m[("tuneloop_rdma_port_transmit_bytes_total", *P2)] == 4 * 123_456_789
    assert m[("tuneloop_rdma_stat_read_errors_total", *P0)] == 2
    shared = collector.read_errors.counts()  # tuneloop_collector_read_errors_total{rdma,...}
    assert (shared["not_regular"], shared["too_large"]) == (1, 1)
    assert shared["malformed"] == 1  # the fixture's N/A counter on mlx5_1


def test_node_without_rdma_exports_nothing(tmp_path):
    collector = RdmaCollector(tmp_path)
    collector.refresh()
    assert list(collector.collect()) == []


def test_unlistable_class_directory_is_an_error(tmp_path):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "infiniband").write_text("not a directory")
    with pytest.raises(CollectorError, match=r"cannot list RDMA devices in .*class/infiniband"):
        RdmaCollector(tmp_path).refresh()


def test_every_exported_name_is_in_the_catalog():
    m = exported(RdmaCollector(NODE / "sys"))
    names = {k[0].removesuffix("_total") for k in m}
    assert names <= {name.removesuffix("_total") for name in ALL}


def test_big_node_exports_every_counter_of_eight_ports(tmp_path):
    big = build_big_node(tmp_path, processes=[])
    m = exported(RdmaCollector(big.sysfs))
    tables = {**PORT_COUNTERS, **HW_COUNTERS}
    files = [f for f in (*PORT_COUNTER_FILES, *HW_COUNTER_FILES) if f in tables]
    for device in big.rdma_devices:
        port = (f"device={device}", "port=1")
        assert m[("tuneloop_rdma_port_rate_bytes_per_second", *port)] == 400e9 / 8
        assert m[("tuneloop_rdma_stat_read_errors_total", *port)] == 0
        for name in files:
            assert (tables[name].name, *port) in m, name
    assert len(big.rdma_devices) == 8
