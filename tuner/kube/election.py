"""Leader election for the controller: the kubernetes client's own ``LeaderElection`` on a Lease.

Only this package talks to the Kubernetes API; the controller asks for an election here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuner.controller_config import LeaseSettings


def make_election(
    lock: Any, lease: LeaseSettings, on_start: Callable[[], None], on_stop: Callable[[], None]
) -> Any:
    """A kubernetes ``LeaderElection`` over ``lock`` with the lease timings."""
    from kubernetes.leaderelection import electionconfig, leaderelection

    cfg = electionconfig.Config(
        lock, lease.duration_s, lease.renew_deadline_s, lease.retry_period_s, on_start, on_stop
    )
    return leaderelection.LeaderElection(cfg)


def lease_election(
    lease: LeaseSettings, on_start: Callable[[], None], on_stop: Callable[[], None]
) -> Any:
    """An election on the Lease ``lease`` names, with the in-cluster (else kubeconfig) client."""
    from kubernetes import config as kube_config
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    lock = LeaseLock(lease.name, lease.namespace, lease.identity)
    return make_election(lock, lease, on_start, on_stop)
