"""Fixture sources that make the collectors export the families a healthy fixture node does not.

The consistency check runs the real collectors; these give them a MIG-enabled GPU, an RDMA port
that counts receive discards, a node-tuning journal with an applied generation and a failure, and
benchmark results with a reverse test, a failed test and a perf window that counted IPC.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agent.bench.iperf3 import Iperf3BusyError, parse_iperf3_json
from agent.bench.perf import PerfResult, parse_perf_csv
from agent.bench.results import ResultsStore, iperf3_error_record, iperf3_record, perf_record
from agent.nodetune.desired import parse_desired
from agent.nodetune.reconciler import Reconciler

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PERF_WITH_IPC = "2000000,,cycles,1000000,100.00,,\n3000000,,instructions,1000000,100.00,,\n"


def mig_gpus(tmp: Path) -> Path:
    """The two-GPU fixture with MIG on GPU 0 and two MIG devices."""
    doc = json.loads((FIXTURES / "gpu" / "two_gpus.json").read_text())
    doc["devices"][0]["mig"] = {
        "enabled": True,
        "instances": [
            {
                "uuid": "MIG-11111111-2222-3333-4444-555555555555",
                "memory": {"total": 10 << 30, "used": 3 << 30},
            },
        ],
    }
    path = tmp / "mig_gpus.json"
    path.write_text(json.dumps(doc))
    return path


def rdma_sysfs(tmp: Path) -> Path:
    """A sysfs tree with the fixture's RDMA devices, one port also counting receive discards."""
    sysfs = tmp / "sys"
    shutil.copytree(
        FIXTURES / "node" / "sys" / "class" / "infiniband", sysfs / "class" / "infiniband"
    )
    counters = sysfs / "class" / "infiniband" / "mlx5_0" / "ports" / "1" / "counters"
    (counters / "port_rcv_discards").write_text("7\n")
    return sysfs


def tuned_node(tmp: Path) -> tuple[Path, Path]:
    """A procfs copy with one applied generation, and its journal with one failure counted."""
    procfs = Path(shutil.copytree(FIXTURES / "nodetune" / "proc", tmp / "proc"))
    journal = tmp / "nodetune.json"
    desired = {"generation": 5, "sysctls": {"net.ipv4.tcp_rmem": "4096 131072 33554432"}}
    result = Reconciler(procfs, journal, clock=lambda: 1234.5).apply(parse_desired(desired))
    if not result.ok:
        raise RuntimeError(f"fixture apply failed: {result}")
    doc = json.loads(journal.read_text())
    doc["failures"] = {"write": 1}
    journal.write_text(json.dumps(doc))
    return procfs, journal


def more_bench_results(path: Path) -> Path:
    """Append a reverse iperf3 test, a busy failure and a perf window with IPC to ``path``."""
    store = ResultsStore(path)
    bench = FIXTURES / "bench"
    reverse = parse_iperf3_json((bench / "iperf3_reverse.json").read_text(), "10.0.0.2", 5201)
    store.append(iperf3_record(reverse))
    store.append(iperf3_error_record("10.0.0.3", 5201, Iperf3BusyError("busy")))
    events = tuple(parse_perf_csv(PERF_WITH_IPC))
    store.append(perf_record(PerfResult(events, 1.0, None, reverse.started_at)))
    return path
