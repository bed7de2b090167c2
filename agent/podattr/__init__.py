"""Attribute GPU processes to Kubernetes pods: cgroup paths plus the kubelet pod-resources API."""

from agent.podattr.cgroup import PodCgroup, parse_cgroup, read_pod_cgroup
from agent.podattr.podresources import (
    DEFAULT_SOCKET,
    ContainerDevices,
    ContainerResources,
    PodResources,
    PodResourcesClient,
    PodResourcesError,
)
from agent.podattr.resolver import PodIdentity, PodResolver

__all__ = [
    "DEFAULT_SOCKET",
    "ContainerDevices",
    "ContainerResources",
    "PodCgroup",
    "PodIdentity",
    "PodResolver",
    "PodResources",
    "PodResourcesClient",
    "PodResourcesError",
    "parse_cgroup",
    "read_pod_cgroup",
]
