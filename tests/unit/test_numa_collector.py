import os
import shutil
from pathlib import Path

import pytest

from agent.collectors.base import CollectorError
from agent.collectors.numa import NumaCollector, parse_cpulist
from agent.placement import GpuProcess
from tests.fixtures.bignode import build_big_node, write_process_status
from tests.unit.exposition import exported
from tuneloop.catalog import ALL

NODE = Path(__file__).parents[1] / "fixtures" / "node"
KIB = 1024


def test_memory_per_node_in_bytes():
    m = exported(NumaCollector(NODE / "sys", NODE / "proc"))
    assert m[("tuneloop_numa_memory_total_bytes", "numa_node=0")] == 263782636 * KIB
    assert m[("tuneloop_numa_memory_free_bytes", "numa_node=0")] == 201534120 * KIB
    assert m[("tuneloop_numa_memory_used_bytes", "numa_node=1")] == 114241152 * KIB
    assert m[("tuneloop_numa_memory_file_pages_bytes", "numa_node=1")] == 40000000 * KIB
    assert m[("tuneloop_numa_memory_anon_pages_bytes", "numa_node=0")] == 25000000 * KIB
    assert m[("tuneloop_numa_node_cpus", "numa_node=0")] == 32
    assert m[("tuneloop_numa_node_cpus", "numa_node=1")] == 32


def test_numastat_event_names():
    m = exported(NumaCollector(NODE / "sys", NODE / "proc"))
    events = {k[1:]: v for k, v in m.items() if k[0] == "tuneloop_numa_events_total"}
    assert events == {
        ("event=hit", "numa_node=0"): 123456789,
        ("event=miss", "numa_node=0"): 2345,
        ("event=foreign", "numa_node=0"): 3456,
        ("event=interleave", "numa_node=0"): 45678,
        ("event=local", "numa_node=0"): 123400000,
        ("event=other", "numa_node=0"): 56789,
        ("event=hit", "numa_node=1"): 98765432,
        ("event=miss", "numa_node=1"): 3456,
        ("event=foreign", "numa_node=1"): 2345,
        ("event=interleave", "numa_node=1"): 45012,
        ("event=local", "numa_node=1"): 98700000,
        ("event=other", "numa_node=1"): 65432,
    }


def test_every_exported_name_is_in_the_catalog():
    m = exported(NumaCollector(NODE / "sys", NODE / "proc", lambda: []))
    names = {k[0].removesuffix("_total") for k in m}
    assert names <= {name.removesuffix("_total") for name in ALL}


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,8,10-11", {0, 1, 2, 3, 8, 10, 11}), ("5", {5}), ("", set()), ("0-1\n", {0, 1})],
)
def test_parse_cpulist(text, cpus):
    assert parse_cpulist(text) == cpus


@pytest.mark.parametrize("bad", ["0-a", "3-1", "1,,2", "0-3:2/4"])
def test_bad_cpulist_names_the_source(bad):
    with pytest.raises(CollectorError, match=r"^node0/cpulist: bad CPU"):
        parse_cpulist(bad, "node0/cpulist")


def placed(tmp_path, processes, statuses):
    for pid, cpulist in statuses.items():
        write_process_status(tmp_path, pid, cpulist)
    m = exported(NumaCollector(NODE / "sys", tmp_path, lambda: processes))
    cross = {k[1:]: v for k, v in m.items() if k[0] == "tuneloop_gpu_process_cross_numa"}
    ratio = {k[1:]: v for k, v in m.items() if k[0] == "tuneloop_gpu_process_off_node_cpus_ratio"}
    return cross, ratio


def labels(gpu, pid, pod="", namespace=""):
    return (f"gpu={gpu}", f"namespace={namespace}", f"pid={pid}", f"pod={pod}")


def test_cross_numa_both_ways(tmp_path):
    processes = [
        GpuProcess("0", 100, 0, pod="vllm-0", namespace="serving"),  # pinned to its node
        GpuProcess("4", 101, 1, pod="vllm-1", namespace="serving"),  # allowed everywhere
        GpuProcess("1", 102, 0),  # its node plus two CPUs of node 1
        GpuProcess("5", 103, 1),  # pinned to the other node entirely
    ]
    statuses = {100: "0-15,32-47", 101: "0-63", 102: "0-17", 103: "0-7"}
    cross, ratio = placed(tmp_path, processes, statuses)
    assert cross == {
        labels("0", 100, "vllm-0", "serving"): 0,
        labels("4", 101, "vllm-1", "serving"): 1,
        labels("1", 102): 1,
        labels("5", 103): 1,
    }
    assert ratio == {
        labels("0", 100, "vllm-0", "serving"): 0,
        labels("4", 101, "vllm-1", "serving"): 0.5,
        labels("1", 102): 2 / 18,
        labels("5", 103): 1.0,
    }


def test_vanished_and_unplaceable_processes_are_skipped(tmp_path):
    processes = [
        GpuProcess("0", 200, 0),
        GpuProcess("0", 201, 0),  # exited: no /proc/201
        GpuProcess("2", 202, None),  # platform reports no NUMA affinity
        GpuProcess("3", 203, 7),  # node 7 does not exist
        GpuProcess("1", 204, 0),  # status without Cpus_allowed_list
    ]
    (tmp_path / "204").mkdir()
    (tmp_path / "204" / "status").write_text("Name:\tzombie\nState:\tZ (zombie)\n")
    cross, ratio = placed(tmp_path, processes, {200: "0-63", 202: "0-63", 203: "0-63"})
    assert cross == {labels("0", 200): 1}
    assert ratio == {labels("0", 200): 0.5}


def test_without_a_process_source_no_placement_is_exported():
    m = exported(NumaCollector(NODE / "sys", NODE / "proc"))
    assert not [k for k in m if k[0].startswith("tuneloop_gpu_process")]


def read_errors(collector: NumaCollector) -> dict[str, int]:
    return {k: v for k, v in collector.read_errors.counts().items() if v}


def test_a_malformed_meminfo_line_drops_that_line_only(tmp_path, caplog):
    node = tmp_path / "devices" / "system" / "node" / "node0"
    node.mkdir(parents=True)
    (node / "meminfo").write_text(
        "Node 0 MemTotal:  100 kB\nNode 0 MemFree:  lots kB\nMemUsed: 1 kB\n"
    )
    collector = NumaCollector(tmp_path, tmp_path)
    m = exported(collector)
    total = [v for k, v in m.items() if k[0] == "tuneloop_numa_memory_total_bytes"]
    assert total == [100 * 1024]
    assert not [k for k in m if k[0] == "tuneloop_numa_memory_free_bytes"]
    assert read_errors(collector) == {"malformed": 2}
    assert "node0/meminfo:2" in caplog.text and "'lots' is not an integer" in caplog.text


def test_a_malformed_numastat_line_drops_that_line_only(tmp_path):
    node = tmp_path / "devices" / "system" / "node" / "node3"
    node.mkdir(parents=True)
    (node / "numastat").write_text("numa_hit 1\nnuma_miss\nnuma_foreign 5\n")
    collector = NumaCollector(tmp_path, tmp_path)
    m = exported(collector)
    events = {
        label: v
        for k, v in m.items()
        if k[0] == "tuneloop_numa_events_total"
        for label in k[1:]
        if label.startswith("event=")
    }
    assert events == {"event=hit": 1, "event=foreign": 5}
    assert read_errors(collector) == {"malformed": 1}


def hostile_node(tmp_path):
    """A copy of the fixture sysfs to break, and four GPU processes on nodes 0 and 1."""
    shutil.copytree(NODE / "sys", tmp_path / "sys")
    node = tmp_path / "sys" / "devices" / "system" / "node"
    processes = [GpuProcess("0", 100, 0), GpuProcess("1", 101, 0), GpuProcess("4", 102, 1)]
    for pid in (100, 101, 102):
        write_process_status(tmp_path / "proc", pid, "0-63")
    return node, processes


def by_pid(m, name):
    return {label: v for k, v in m.items() if k[0] == name for label in k if "pid=" in label}


def cross_numa(m):
    return by_pid(m, "tuneloop_gpu_process_cross_numa")


def test_a_fifo_in_place_of_a_cpulist_drops_that_node_only(tmp_path):
    node, processes = hostile_node(tmp_path)
    (node / "node0" / "cpulist").unlink()
    os.mkfifo(node / "node0" / "cpulist")
    collector = NumaCollector(tmp_path / "sys", tmp_path / "proc", lambda: processes)
    m = exported(collector)  # a plain read of the FIFO would block here forever
    assert cross_numa(m) == {"pid=102": 1}
    cpus = [k for k in m if k[0] == "tuneloop_numa_node_cpus"]
    assert len(cpus) == 1
    assert read_errors(collector) == {"not_regular": 1}


def test_a_bad_cpulist_value_drops_that_node_not_the_collection(tmp_path):
    node, processes = hostile_node(tmp_path)
    (node / "node1" / "cpulist").write_text("16-x\n")
    collector = NumaCollector(tmp_path / "sys", tmp_path / "proc", lambda: processes)
    m = exported(collector)
    assert cross_numa(m) == {"pid=100": 1, "pid=101": 1}
    assert read_errors(collector) == {"malformed": 1}


def test_an_empty_cpulist_is_reported_and_its_processes_are_cross_numa(tmp_path, caplog):
    node, processes = hostile_node(tmp_path)
    (node / "node1" / "cpulist").write_text("\n")
    collector = NumaCollector(tmp_path / "sys", tmp_path / "proc", lambda: processes)
    m = exported(collector)
    assert cross_numa(m) == {"pid=100": 1, "pid=101": 1, "pid=102": 1}
    ratio = by_pid(m, "tuneloop_gpu_process_off_node_cpus_ratio")
    assert ratio["pid=102"] == 1.0
    assert read_errors(collector) == {"empty": 1}
    assert "lists no CPUs" in caplog.text
    assert [r.levelname for r in caplog.records if "lists no CPUs" in r.message] == ["WARNING"]


def test_a_huge_status_file_is_refused_not_read_whole(tmp_path):
    _node, processes = hostile_node(tmp_path)
    status = tmp_path / "proc" / "101" / "status"
    with status.open("ab") as out:
        out.write(b"x" * (1024 * 1024))
    collector = NumaCollector(tmp_path / "sys", tmp_path / "proc", lambda: processes)
    m = exported(collector)
    assert set(cross_numa(m)) == {"pid=100", "pid=102"}
    assert read_errors(collector) == {"too_large": 1}


def test_no_nodes_is_an_error(tmp_path):
    with pytest.raises(CollectorError, match="cannot list NUMA nodes"):
        NumaCollector(tmp_path, tmp_path).refresh()
    (tmp_path / "devices" / "system" / "node" / "possible").parent.mkdir(parents=True)
    with pytest.raises(CollectorError, match=r"no node<N> directories"):
        NumaCollector(tmp_path, tmp_path).refresh()


def test_big_node(tmp_path):
    big = build_big_node(tmp_path, processes=[(1000, 0), (1001, 0), (1002, 1), (1003, 1)])
    processes = [GpuProcess(str(i), pid, i // 2) for i, pid in enumerate(big.pids)]
    m = exported(NumaCollector(big.sysfs, big.procfs, lambda: processes))
    assert m[("tuneloop_numa_node_cpus", "numa_node=1")] == 112
    cross = {k[3]: v for k, v in m.items() if k[0] == "tuneloop_gpu_process_cross_numa"}
    assert cross == {"pid=1000": 1, "pid=1001": 0, "pid=1002": 1, "pid=1003": 0}


def test_this_machine():
    """The real kernel's node tree and this process's own affinity."""
    if not Path("/sys/devices/system/node/node0").exists():
        pytest.skip("kernel without NUMA sysfs")
    me = os.getpid()
    m = exported(NumaCollector(Path("/sys"), Path("/proc"), lambda: [GpuProcess("0", me, 0)]))
    assert m[("tuneloop_numa_memory_total_bytes", "numa_node=0")] > 0
    node0 = parse_cpulist(Path("/sys/devices/system/node/node0/cpulist").read_text())
    allowed = os.sched_getaffinity(0)
    expected = len(allowed - node0) / len(allowed)
    key = ("tuneloop_gpu_process_off_node_cpus_ratio", *labels("0", me))
    assert m[key] == pytest.approx(expected)
