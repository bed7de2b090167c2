"""Node tuning inside a network namespace: the namespace changes, the host does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.netlab import netns
from agent.nodetune.desired import DesiredStateError, parse_desired
from agent.nodetune.reconciler import Reconciler

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]
RMEM = "net.ipv4.tcp_rmem"
HOST_RMEM = Path("/proc/sys/net/ipv4/tcp_rmem")


def in_ns(ns: netns.Namespace, key: str) -> str:
    path = "/proc/sys/" + key.replace(".", "/")
    return " ".join(ns.run(["cat", path]).stdout.split())


@pytest.fixture
def namespace():
    with netns.Namespace() as ns:
        yield ns


def test_process_procfs_root_applies_in_its_namespace(namespace, tmp_path: Path) -> None:
    host_before = HOST_RMEM.read_text()
    holder = netns.spawn_holder(namespace.name, 60)
    try:
        rec = Reconciler(Path(f"/proc/{holder.pid}"), tmp_path / "j.json")
        ns_before = in_ns(namespace, RMEM)
        wanted = "4096 65536 65536"
        cc = in_ns(namespace, "net.ipv4.tcp_available_congestion_control").split()[0]
        desired = parse_desired(
            {"generation": 1, "sysctls": {RMEM: wanted, "net.ipv4.tcp_congestion_control": cc}}
        )
        result = rec.apply(desired)
        assert result.ok and RMEM in result.written
        assert in_ns(namespace, RMEM) == wanted
        assert HOST_RMEM.read_text() == host_before
        assert rec.rollback().ok
        assert in_ns(namespace, RMEM) == ns_before
    finally:
        holder.kill()
        holder.wait()
    assert HOST_RMEM.read_text() == host_before


def test_namespace_file_target_and_global_keys_rejected(namespace, tmp_path: Path) -> None:
    host_before = HOST_RMEM.read_text()
    rec = Reconciler(Path("/proc"), tmp_path / "j.json", netns=namespace.ns_file)
    assert rec.apply(parse_desired({"generation": 1, "sysctls": {RMEM: "8192 65536 131072"}})).ok
    assert in_ns(namespace, RMEM) == "8192 65536 131072"
    with pytest.raises(DesiredStateError, match=r"net\.core\.rmem_max: global sysctl"):
        rec.apply(parse_desired({"generation": 2, "sysctls": {"net.core.rmem_max": 8388608}}))
    assert HOST_RMEM.read_text() == host_before
