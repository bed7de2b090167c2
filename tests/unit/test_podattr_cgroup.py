from pathlib import Path

import pytest

from agent.podattr import PodCgroup, parse_cgroup, read_pod_cgroup

PROCFS = Path(__file__).resolve().parents[1] / "fixtures" / "node" / "proc"
UID = "1f5a0c3e-7d6b-4c1e-9a8f-2b3c4d5e6f70"
CID = "a" * 56 + "0123abcd"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
            f"{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope\n",
            PodCgroup(UID, CID, "burstable"),
            id="v2-systemd-containerd",
        ),
        pytest.param(
            f"0::/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-{CID}.scope\n",
            PodCgroup(UID, CID, "guaranteed"),
            id="v2-systemd-guaranteed-crio",
        ),
        pytest.param(
            f"0::/../../kubepods-besteffort-pod{UID.replace('-', '_')}.slice/docker-{CID}.scope\n",
            PodCgroup(UID, CID, "besteffort"),
            id="v2-seen-from-another-cgroup-namespace",
        ),
        pytest.param(
            f"12:memory:/kubepods/burstable/pod{UID}/{CID}\n"
            f"11:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n1:name=systemd:/\n",
            PodCgroup(UID, CID, "burstable"),
            id="v1-cgroupfs",
        ),
        pytest.param(
            f"4:pids:/kubepods/pod{UID}/crio-{CID}\n",
            PodCgroup(UID, CID, "guaranteed"),
            id="v1-cgroupfs-guaranteed-crio",
        ),
        pytest.param(
            "11:devices:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
            f"{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope\n",
            PodCgroup(UID, CID, "burstable"),
            id="v1-systemd",
        ),
        pytest.param(
            f"0::/kubepods/besteffort/pod{UID.upper()}\n",
            PodCgroup(UID, "", "besteffort"),
            id="pod-cgroup-without-container",
        ),
        pytest.param("0::/system.slice/dcgm.service\n", None, id="host-daemon"),
        pytest.param("0::/user.slice/user-0.slice/session-3.scope\n", None, id="login-session"),
        pytest.param("", None, id="empty"),
        pytest.param("garbage without colons\n", None, id="garbage"),
    ],
)
def test_cgroup_layouts(text, expected):
    assert parse_cgroup(text) == expected


def test_container_line_wins_over_a_pod_level_line():
    text = f"3:cpuset:/kubepods/burstable/pod{UID}\n2:memory:/kubepods/burstable/pod{UID}/{CID}\n"
    assert parse_cgroup(text) == PodCgroup(UID, CID, "burstable")


def test_reads_the_fixture_tree():
    v2 = read_pod_cgroup(PROCFS, 2101)
    v1 = read_pod_cgroup(PROCFS, 2102)
    assert v2 is not None and v2.pod_uid == UID and v2.qos == "burstable"
    assert v1 is not None and v1.pod_uid == "2a6b1d4f-8e7c-4d2f-8b9a-3c4d5e6f7081"
    assert len(v1.container_id) == 64
    assert read_pod_cgroup(PROCFS, 2103) is None  # host process
    assert read_pod_cgroup(PROCFS, 999999) is None  # exited
