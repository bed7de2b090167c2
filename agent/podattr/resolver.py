"""PID -> pod, namespace, container: cgroups for the pod UID, pod-resources for the names.

The kubelet's pod-resources v1 answer has no pod UID and no container ID; it says which
container holds which device. The cgroup path has the UID and container ID but no names. The
matching rule joins them through the GPU a process runs on:

1. A device ID matches a GPU when it equals the GPU's UUID or starts with ``<uuid>::`` (the
   NVIDIA device plugin's time-slicing replicas).
2. If exactly one container holds the process's GPU, that container is the answer.
3. If several do (a shared GPU), the candidates are narrowed with the process's pod UID: a pod
   that another process of the same pod UID was unambiguously matched to in the same pass wins.
   Otherwise the pod is left empty rather than guessed.
4. A process not in a pod cgroup (host daemon, exited) gets no pod, even if its GPU is allocated.

A device (a GPU, or a MIG device by its ``MIG-`` UUID) is owned by the one pod holding it;
several pods holding it (time-slicing) make no owner rather than a guess, as in rule 3.

When the socket is unreachable, the resolver returns what cgroups tell (pod UID, container ID),
logs once, and logs again once when the socket answers again. It never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.podattr.cgroup import PodCgroup, read_pod_cgroup
from agent.podattr.podresources import PodResources, PodResourcesClient, PodResourcesError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodIdentity:
    """Who a process belongs to; empty strings where unknown."""

    pod: str = ""
    namespace: str = ""
    container: str = ""
    pod_uid: str = ""
    container_id: str = ""


_Holder = tuple[str, str, str]  # (namespace, pod, container)


def device_holders(pods: Iterable[PodResources]) -> dict[str, list[_Holder]]:
    """GPU UUID -> containers holding it (time-slicing suffixes ``::n`` stripped)."""
    holders: dict[str, list[_Holder]] = {}
    for pod in pods:
        for container in pod.containers:
            for devices in container.devices:
                for device_id in devices.device_ids:
                    uuid = device_id.split("::", 1)[0]
                    entry = (pod.namespace, pod.name, container.name)
                    if entry not in holders.setdefault(uuid, []):
                        holders[uuid].append(entry)
    return holders


def device_owner(holders: dict[str, list[_Holder]], uuid: str) -> PodIdentity:
    """The pod and container holding a device; empty when none or several pods hold it."""
    found = holders.get(uuid, [])
    if len({h[:2] for h in found}) != 1:
        return PodIdentity()
    namespace, pod, _ = found[0]
    containers = {h[2] for h in found}
    return PodIdentity(pod, namespace, found[0][2] if len(containers) == 1 else "")


class PodResolver:
    """Attributes GPU processes to pods; one pod-resources call per :meth:`resolve_all`."""

    def __init__(
        self, procfs: Path, pod_resources_socket: Path | None, timeout: float = 2.0
    ) -> None:
        self.procfs = procfs
        self._client = (
            PodResourcesClient(pod_resources_socket, timeout) if pod_resources_socket else None
        )
        self._failing = False

    def _pods(self) -> list[PodResources] | None:
        if self._client is None:
            return None
        try:
            pods = self._client.list()
        except PodResourcesError as err:
            if not self._failing:
                log.warning("%s; attributing GPU processes from cgroups only", err)
                self._failing = True
            return None
        if self._failing:
            log.info("pod-resources on %s answers again", self._client.socket)
            self._failing = False
        return pods

    def holders(self) -> dict[str, list[_Holder]]:
        """Device UUID -> containers holding it, from one pod-resources call (empty if down)."""
        pods = self._pods()
        return device_holders(pods) if pods is not None else {}

    def resolve_all(
        self,
        processes: Iterable[tuple[int, str]],
        holders: dict[str, list[_Holder]] | None = None,
    ) -> dict[int, PodIdentity]:
        """Identity of each (pid, GPU UUID); a pid on several GPUs gets one identity.

        ``holders`` is a listing from :meth:`holders` to reuse; without it one is made.
        """
        procs = list(processes)
        if holders is None:
            holders = self.holders()
        cgroups: dict[int, PodCgroup | None] = {}
        for pid, _ in procs:
            if pid not in cgroups:
                try:
                    cgroups[pid] = read_pod_cgroup(self.procfs, pid)
                except OSError:
                    cgroups[pid] = None
        # first pass: unambiguous matches teach which pod each pod UID is
        uid_pod: dict[str, tuple[str, str]] = {}
        for pid, uuid in procs:
            cg, found = cgroups[pid], holders.get(uuid, [])
            if cg and len({(ns, pod) for ns, pod, _ in found}) == 1:
                uid_pod.setdefault(cg.pod_uid, found[0][:2])
        result: dict[int, PodIdentity] = {}
        for pid, uuid in procs:
            cg = cgroups[pid]
            if cg is None:
                result.setdefault(pid, PodIdentity())
                continue
            ident = self._match(cg, holders.get(uuid, []), uid_pod.get(cg.pod_uid))
            if pid not in result or (ident.pod and not result[pid].pod):
                result[pid] = ident
        return result

    @staticmethod
    def _match(cg: PodCgroup, found: list[_Holder], known: tuple[str, str] | None) -> PodIdentity:
        base = PodIdentity(pod_uid=cg.pod_uid, container_id=cg.container_id)
        if known is not None:
            found = [h for h in found if h[:2] == known]
        if len({h[:2] for h in found}) != 1:
            return base
        namespace, pod, _ = found[0]
        containers = {h[2] for h in found}
        container = found[0][2] if len(containers) == 1 else ""
        return PodIdentity(pod, namespace, container, cg.pod_uid, cg.container_id)

    def resolve(self, pid: int, gpu_uuid: str) -> PodIdentity:
        """Identity of one process on one GPU."""
        return self.resolve_all([(pid, gpu_uuid)])[pid]

    def close(self) -> None:
        """Release the gRPC channel."""
        if self._client is not None:
            self._client.close()
