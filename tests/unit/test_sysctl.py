"""Sysctl file access under a procfs root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.nodetune.sysctl import SysctlError, SysctlFS, key_path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "nodetune"


@pytest.fixture
def procfs(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "proc", tmp_path / "proc"))


def test_key_maps_to_path() -> None:
    assert key_path(Path("/proc"), "net.ipv4.tcp_rmem") == Path("/proc/sys/net/ipv4/tcp_rmem")
    assert key_path(Path("/x"), "net.core.rmem_max") == Path("/x/sys/net/core/rmem_max")


@given(st.text(max_size=30))
def test_fuzz_key_never_escapes_the_root(key: str) -> None:
    try:
        path = key_path(Path("/root"), key)
    except ValueError as exc:
        assert "is not a sysctl key" in str(exc)
        return
    assert path.resolve().is_relative_to(Path("/root/sys"))


def test_read_strips_newline_and_keeps_tabs(procfs: Path) -> None:
    fs = SysctlFS(procfs)
    assert fs.read("net.ipv4.tcp_rmem") == "4096\t131072\t6291456"
    assert fs.exists("net.ipv4.tcp_rmem")
    assert not fs.exists("net.ipv4.tcp_nonexistent")


def test_write_replaces_whole_value(procfs: Path) -> None:
    fs = SysctlFS(procfs)
    fs.write("net.core.rmem_max", "4096")
    assert (procfs / "sys/net/core/rmem_max").read_text() == "4096\n"


def test_errors_name_key_and_file(procfs: Path) -> None:
    fs = SysctlFS(procfs)
    with pytest.raises(SysctlError) as err:
        fs.read("net.ipv4.tcp_missing")
    assert "net.ipv4.tcp_missing" in str(err.value)
    assert str(procfs / "sys/net/ipv4/tcp_missing") in str(err.value)
    with pytest.raises(SysctlError, match=r"net\.core\.absent: cannot write"):
        fs.write("net.core.absent", "1")


def test_process_root_means_that_process_namespace(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "4242" / "ns").mkdir(parents=True)
    (proc / "4242" / "ns" / "net").write_text("")
    fs = SysctlFS(proc / "4242")
    assert fs.procfs == proc
    assert fs.netns == proc / "4242" / "ns" / "net"
    assert SysctlFS(proc).netns is None
