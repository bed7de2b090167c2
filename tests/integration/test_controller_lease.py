"""Leader election between two controllers: the kubernetes client's own LeaderElection and
LeaseLock, over real HTTP, against the fake API server's coordination.k8s.io/v1 Leases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from tests.fakes.kube_apiserver import FakeApiServer
from tuner.controller_config import LeaseSettings
from tuner.kube.election import make_election

pytestmark = pytest.mark.timeout(30)

DURATION, RENEW, RETRY = 3, 2, 1


class PartitionedLock(LeaseLock):
    """The client's LeaseLock, whose API calls fail with 503 once ``cut`` is set: a candidate
    cut off from the API server (it keeps running, but can no longer renew)."""

    def __init__(self, url: str, name: str, namespace: str, identity: str) -> None:
        super().__init__(name, namespace, identity)
        cfg = client.Configuration(host=url)
        self.api_instance = client.CoordinationV1Api(client.ApiClient(cfg))
        self.cut = threading.Event()

    @staticmethod
    def _unavailable() -> ApiException:
        return ApiException(status=503, reason="Service Unavailable")

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        if self.cut.is_set():
            return False, self._unavailable()
        return super().get(name, namespace)

    def create(self, name: str, namespace: str, election_record: Any) -> bool:
        return not self.cut.is_set() and bool(super().create(name, namespace, election_record))

    def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        return not self.cut.is_set() and bool(super().update(name, namespace, updated_record))


class Candidate:
    """One controller replica running ``make_election(...).run()`` in a thread."""

    def __init__(self, url: str, identity: str) -> None:
        self.identity = identity
        self.lock = PartitionedLock(url, "tuneloop-tuner", "tuneloop", identity)
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.started_at = 0.0
        self.done = threading.Event()  # ends the "tuning" callback
        lease = LeaseSettings("tuneloop-tuner", "tuneloop", identity, DURATION, RENEW, RETRY)
        self.election = make_election(self.lock, lease, self._lead, self._stop)
        self.thread = threading.Thread(target=self.election.run, daemon=True, name=identity)

    def _lead(self) -> None:
        self.started_at = time.monotonic()
        self.started.set()
        self.done.wait(20)

    def _stop(self) -> None:
        self.stopped.set()
        self.done.set()


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


def finish(*candidates: Candidate) -> None:
    for c in candidates:
        c.lock.cut.set()
        c.done.set()
    for c in candidates:
        c.thread.join(RENEW + 2 * RETRY + 1)


def test_one_leads_and_the_other_takes_over_when_it_stops_renewing(api: FakeApiServer) -> None:
    a, b = Candidate(api.url, "tuner-a"), Candidate(api.url, "tuner-b")
    try:
        a.thread.start()
        assert a.started.wait(5), "the first candidate creates the Lease and leads"
        b.thread.start()
        time.sleep(DURATION + RETRY)  # a renews throughout; b keeps finding the lease held
        assert not b.started.is_set(), "exactly one leads"
        lease = api.get("leases", "tuneloop", "tuneloop-tuner")
        assert lease["spec"]["holderIdentity"] == "tuner-a"
        assert lease["spec"]["leaseDurationSeconds"] == DURATION
        renews = int(lease["metadata"]["resourceVersion"])

        time.sleep(RETRY + 0.5)
        lease = api.get("leases", "tuneloop", "tuneloop-tuner")
        assert int(lease["metadata"]["resourceVersion"]) > renews, "the leader renews"

        a.lock.cut.set()
        cut_at = time.monotonic()
        last = api.get("leases", "tuneloop", "tuneloop-tuner")["spec"]["renewTime"]
        assert b.started.wait(DURATION + 3 * RETRY + 1), "b takes over"
        # b saw a's last renewal at most a retry period late, then waits out the lease and
        # tries again within a retry period.
        assert b.started_at - cut_at <= DURATION + 2 * RETRY + 0.5
        assert a.stopped.wait(RENEW + RETRY + 1), "a gives up leading after its renew deadline"
        lease = api.get("leases", "tuneloop", "tuneloop-tuner")
        assert lease["spec"]["holderIdentity"] == "tuner-b"
        assert parse(lease["spec"]["acquireTime"]) > parse(last), "b's own acquire time"
    finally:
        finish(a, b)


def test_a_stale_update_is_refused_and_the_holder_kept(api: FakeApiServer) -> None:
    a = Candidate(api.url, "tuner-a")
    assert a.election.try_acquire_or_renew()  # creates the Lease
    stale = PartitionedLock(api.url, "tuneloop-tuner", "tuneloop", "tuner-x")
    ok, _ = stale.get("tuneloop-tuner", "tuneloop")
    assert ok
    assert a.election.try_acquire_or_renew()  # a renews, bumping the resourceVersion
    record = stale.get_lock_object(stale.lease_reference)
    record.holder_identity = "tuner-x"
    assert not stale.update("tuneloop-tuner", "tuneloop", record)
    assert stale.lease_reference is not None
    with pytest.raises(ApiException) as err:  # what the lock saw: 409 Conflict
        stale.api_instance.replace_namespaced_lease(
            "tuneloop-tuner", "tuneloop", stale.lease_reference
        )
    assert err.value.status == 409
    lease = api.get("leases", "tuneloop", "tuneloop-tuner")
    assert lease["spec"]["holderIdentity"] == "tuner-a"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
