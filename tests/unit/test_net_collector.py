import os
import shutil
from pathlib import Path

import pytest

from agent.collectors.base import CollectorError
from agent.collectors.net import NetCollector, parse_paired_tables
from tests.unit.exposition import exported
from tuneloop.catalog import ALL

NODE = Path(__file__).parents[1] / "fixtures" / "node"


@pytest.fixture
def procfs(tmp_path):
    """A writable copy of the fixture procfs."""
    shutil.copytree(NODE / "proc", tmp_path / "proc")
    return tmp_path / "proc"


def test_tcp_counters_from_snmp():
    m = exported(NetCollector(NODE / "proc"))
    assert m[("tuneloop_tcp_retransmitted_segments_total",)] == 4200
    assert m[("tuneloop_tcp_sent_segments_total",)] == 8_000_000
    assert m[("tuneloop_tcp_received_segments_total",)] == 9_000_000
    assert m[("tuneloop_tcp_active_opens_total",)] == 3000
    assert m[("tuneloop_tcp_passive_opens_total",)] == 9000
    assert m[("tuneloop_tcp_established_connections",)] == 512
    assert m[("tuneloop_tcp_receive_errors_total",)] == 3
    assert m[("tuneloop_tcp_resets_sent_total",)] == 700


def test_tcp_ext_counters_from_netstat():
    m = exported(NetCollector(NODE / "proc"))
    assert m[("tuneloop_tcp_timeouts_total",)] == 150
    assert m[("tuneloop_tcp_loss_probes_total",)] == 330
    assert m[("tuneloop_tcp_syn_retransmits_total",)] == 21
    assert m[("tuneloop_tcp_fast_retransmits_total",)] == 880
    assert m[("tuneloop_tcp_backlog_drops_total",)] == 6
    assert m[("tuneloop_tcp_listen_overflows_total",)] == 11
    assert m[("tuneloop_tcp_listen_drops_total",)] == 13
    assert m[("tuneloop_tcp_out_of_order_queued_total",)] == 4400
    assert m[("tuneloop_tcp_original_data_segments_sent_total",)] == 7_500_000


def test_sysctls():
    m = exported(NetCollector(NODE / "proc"))
    assert m[("tuneloop_net_core_rmem_max_bytes",)] == 16777216
    assert m[("tuneloop_net_core_wmem_max_bytes",)] == 16777216
    assert m[("tuneloop_net_core_netdev_max_backlog",)] == 5000
    assert m[("tuneloop_tcp_mtu_probing",)] == 0
    assert m[("tuneloop_tcp_slow_start_after_idle",)] == 1
    rmem = {k[1]: v for k, v in m.items() if k[0] == "tuneloop_tcp_rmem_bytes"}
    assert rmem == {"field=min": 4096, "field=default": 131072, "field=max": 16777216}
    wmem = {k[1]: v for k, v in m.items() if k[0] == "tuneloop_tcp_wmem_bytes"}
    assert wmem == {"field=min": 4096, "field=default": 16384, "field=max": 16777216}
    cc = {k[1:]: v for k, v in m.items() if k[0] == "tuneloop_tcp_congestion_control_info"}
    assert cc == {("algorithm=cubic",): 1}


def test_columns_are_matched_by_name(tmp_path):
    path = tmp_path / "snmp"
    path.write_text(
        "Tcp: OutSegs RetransSegs NewColumn InSegs\nTcp: 10 3 99 20\nUdp: InDatagrams\nUdp: 5\n"
    )
    assert parse_paired_tables(path) == {
        "Tcp": {"OutSegs": 10, "RetransSegs": 3, "NewColumn": 99, "InSegs": 20},
        "Udp": {"InDatagrams": 5},
    }


def test_a_column_the_kernel_lacks_is_not_exported(procfs):
    (procfs / "net" / "snmp").write_text("Tcp: RetransSegs CurrEstab\nTcp: 7 2\n")
    (procfs / "net" / "netstat").unlink()
    m = exported(NetCollector(procfs))
    assert m[("tuneloop_tcp_retransmitted_segments_total",)] == 7
    assert ("tuneloop_tcp_sent_segments_total",) not in m
    assert ("tuneloop_tcp_timeouts_total",) not in m


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Tcp: A B C\nTcp: 1 2\n", r"snmp:2: Tcp has 3 columns but 2 values"),
        ("Tcp: A B\nTcp: 1 x\n", r"snmp:2: Tcp B is 'x', not an integer"),
        ("Tcp: A B\nUdp: 1 2\n", r"snmp:2: expected the values of 'Tcp', got 'Udp: 1 2'"),
        ("Tcp: A\nTcp: 1\nUdp: A\n", r"snmp:3: header line without a value line"),
        ("garbage\nTcp: 1\n", r"snmp:1: expected 'Table: Column \.\.\.'"),
    ],
)
def test_malformed_snmp_names_file_and_line(procfs, text, message):
    (procfs / "net" / "snmp").write_text(text)
    with pytest.raises(CollectorError, match=message) as err:
        NetCollector(procfs).refresh()
    assert str(procfs / "net" / "snmp") in str(err.value)


def read_errors(collector: NetCollector, reason: str) -> int:
    return collector.read_errors.counts()[reason]


def test_a_bad_netstat_value_drops_that_column_only(procfs, caplog):
    (procfs / "net" / "netstat").write_text("TcpExt: TCPTimeouts ListenDrops\nTcpExt: soon 7\n")
    collector = NetCollector(procfs)
    m = exported(collector)
    assert ("tuneloop_tcp_timeouts_total",) not in m
    assert m[("tuneloop_tcp_listen_drops_total",)] == 7
    assert m[("tuneloop_tcp_retransmitted_segments_total",)] > 0
    assert read_errors(collector, "malformed") == 1
    assert "TcpExt TCPTimeouts is 'soon'" in caplog.text


def test_a_malformed_netstat_drops_netstat_only(procfs):
    (procfs / "net" / "netstat").write_text("TcpExt: TCPTimeouts\n")
    collector = NetCollector(procfs)
    m = exported(collector)
    assert ("tuneloop_tcp_timeouts_total",) not in m
    assert ("tuneloop_tcp_retransmitted_segments_total",) in m
    assert read_errors(collector, "malformed") == 1


def test_a_fifo_in_place_of_a_sysctl_is_refused_without_blocking(procfs):
    path = procfs / "sys" / "net" / "ipv4" / "tcp_rmem"
    path.unlink()
    os.mkfifo(path)
    collector = NetCollector(procfs)
    m = exported(collector)  # a plain read would block here forever
    assert not any(k[0] == "tuneloop_tcp_rmem_bytes" for k in m)
    assert m[("tuneloop_net_core_wmem_max_bytes",)] == 16777216
    assert read_errors(collector, "not_regular") == 1


def test_a_fifo_in_place_of_snmp_fails_the_collection_at_once(procfs):
    path = procfs / "net" / "snmp"
    path.unlink()
    os.mkfifo(path)
    collector = NetCollector(procfs)
    with pytest.raises(CollectorError, match="refusing to read a FIFO"):
        collector.refresh()
    assert collector.read_errors.counts()["not_regular"] == 1


def test_missing_snmp_is_an_error(tmp_path):
    with pytest.raises(CollectorError, match=r"cannot read .*net/snmp"):
        NetCollector(tmp_path).refresh()


def test_snmp_without_tcp_is_an_error(procfs):
    (procfs / "net" / "snmp").write_text("Udp: InDatagrams\nUdp: 5\n")
    with pytest.raises(CollectorError, match=r"net/snmp: no Tcp table"):
        NetCollector(procfs).refresh()


def test_absent_sysctl_is_skipped_a_malformed_one_drops_its_series(procfs):
    (procfs / "sys" / "net" / "core" / "rmem_max").unlink()
    collector = NetCollector(procfs)
    m = exported(collector)
    assert ("tuneloop_net_core_rmem_max_bytes",) not in m
    assert m[("tuneloop_net_core_wmem_max_bytes",)] == 16777216
    assert read_errors(collector, "missing") == 0  # absent is normal, not an error
    (procfs / "sys" / "net" / "ipv4" / "tcp_rmem").write_text("4096 131072\n")
    (procfs / "sys" / "net" / "core" / "wmem_max").write_text("big\n")
    collector = NetCollector(procfs)
    m = exported(collector)
    assert not any(k[0] == "tuneloop_tcp_rmem_bytes" for k in m)
    assert ("tuneloop_net_core_wmem_max_bytes",) not in m
    assert any(k[0] == "tuneloop_tcp_wmem_bytes" for k in m)
    assert read_errors(collector, "malformed") == 2


def test_every_exported_name_is_in_the_catalog():
    m = exported(NetCollector(NODE / "proc"))
    names = {k[0].removesuffix("_total") for k in m}
    assert names <= {name.removesuffix("_total") for name in ALL}


def _out_segs() -> int:
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    pairs = zip(lines[::2], lines[1::2], strict=True)
    head, values = next(pair for pair in pairs if pair[0][0] == "Tcp:")
    return int(values[head.index("OutSegs")])


def test_this_machine():
    """The running kernel's own files parse, whatever columns it has."""
    before = _out_segs()
    m = exported(NetCollector(Path("/proc")))
    after = _out_segs()
    assert before <= m[("tuneloop_tcp_sent_segments_total",)] <= after
    algorithm = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    assert m[("tuneloop_tcp_congestion_control_info", f"algorithm={algorithm}")] == 1
