"""Pod UID and container ID of a process, from ``/proc/<pid>/cgroup`` as kubelet lays it out.

Layouts handled (cgroup v1 and v2; any line of the file may carry the path):

- systemd driver: ``.../kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope``
  (also ``crio-``, ``docker-``, ``containerd-`` scopes; Guaranteed pods have no QoS slice);
- cgroupfs driver: ``/kubepods/burstable/pod<uid>/<container id>`` (optionally ``crio-<id>``).

Paths seen from another cgroup namespace start with ``/../..``; the match does not anchor, so
they parse the same. A process outside any pod cgroup (a host daemon) yields ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agent.hostfs import HostFileError, read_text

_UID = r"[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}"
_SYSTEMD = re.compile(
    rf"kubepods(?:-(?P<qos>burstable|besteffort))?-pod(?P<uid>{_UID})\.slice"
    r"(?:/(?:cri-containerd|containerd|crio|docker)-(?P<cid>[0-9a-f]{64})\.scope)?"
)
_CGROUPFS = re.compile(
    rf"/kubepods(?:/(?P<qos>burstable|besteffort))?/pod(?P<uid>{_UID})"
    r"(?:/(?:crio-|docker-|cri-containerd-)?(?P<cid>[0-9a-f]{64}))?(?:/|$)"
)


@dataclass(frozen=True)
class PodCgroup:
    """What the cgroup path tells about a process's pod."""

    pod_uid: str
    container_id: str  # "" when the process sits in the pod cgroup itself
    qos: str  # guaranteed, burstable or besteffort


def parse_cgroup(text: str) -> PodCgroup | None:
    """The pod of the first kubelet-managed cgroup path in a ``/proc/<pid>/cgroup`` text."""
    best: PodCgroup | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        path = parts[2]
        match = _SYSTEMD.search(path) or _CGROUPFS.search(path)
        if not match:
            continue
        found = PodCgroup(
            pod_uid=match["uid"].replace("_", "-").lower(),
            container_id=match["cid"] or "",
            qos=match["qos"] or "guaranteed",
        )
        if found.container_id:
            return found
        best = best or found
    return best


def read_pod_cgroup(procfs: Path, pid: int) -> PodCgroup | None:
    """Parse ``{procfs}/<pid>/cgroup``; ``None`` when the process is gone or not in a pod."""
    try:
        text = read_text(procfs / str(pid) / "cgroup")
    except HostFileError as err:
        if err.reason == "missing":
            return None
        raise
    return parse_cgroup(text)
