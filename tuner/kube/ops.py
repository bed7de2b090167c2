"""Shared moves of the Kubernetes appliers: target names, retries, rollout waits.

Decisions:
- Every API call of the appliers goes through :func:`tuneloop.retry.retry` with jittered
  exponential backoff on the appliers' clock: ``retries`` more attempts (``retries + 1`` calls in
  all) on what may pass by itself: 429 (the API server's priority and fairness throttling), 5xx,
  a timeout or a dropped connection (no HTTP status). 403, 404 and 422 are answers, not weather,
  and are raised at once.
- A write that meets 409 Conflict (a stale resourceVersion: another writer got there first) is
  retried as a whole: read again, mutate again, write again, on the same backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tuneloop.clock import Clock, RealClock
from tuneloop.retry import Backoff, retry
from tuner.appliers.base import ApplierError
from tuner.kube.client import Conflict, KubeError, Obj

T = TypeVar("T")
BASE_S = 0.2
CAP_S = 5.0


class _Retryable(Exception):
    """A KubeError worth another attempt, carried through ``retry``."""

    def __init__(self, error: KubeError) -> None:
        super().__init__(str(error))
        self.error = error


def transient(error: KubeError) -> bool:
    """429, 5xx, or no HTTP answer at all (timeout, refused or dropped connection)."""
    return error.status is None or error.status == 429 or error.status >= 500


def backoff(retries: int) -> Backoff:
    """The appliers' policy: ``retries + 1`` calls in all, 0.2 s doubling to 5 s, full jitter."""
    return Backoff(base_s=BASE_S, cap_s=CAP_S, attempts=max(retries, 0) + 1)


def call_with_retry(
    what: str,
    fn: Callable[[], T],
    retries: int,
    clock: Clock | None = None,
    *,
    conflicts: bool = False,
) -> T:
    """``fn()``, retried on transient errors (and 409 when ``conflicts``); KubeError otherwise."""

    def attempt() -> T:
        try:
            return fn()
        except KubeError as err:
            if transient(err) or (conflicts and isinstance(err, Conflict)):
                raise _Retryable(err) from err
            raise

    try:
        return retry(
            attempt,
            retry_on=(_Retryable,),
            backoff=backoff(retries),
            clock=clock or RealClock(),
            what=what,
        )
    except _Retryable as last:
        raise last.error from None


def split(kind: str, target: str, parts: int, key: bool, shape: str) -> tuple[list[str], str]:
    """Split ``a/b[/c][:key]`` into path parts and the key; ApplierError naming ``shape``."""
    path, sep, name = target.partition(":") if key else (target, "", "")
    pieces = path.split("/")
    if len(pieces) != parts or not all(pieces) or (key and (not sep or not name)):
        raise ApplierError(f"{kind}: target must be {shape!r}, got {target!r}")
    return pieces, name


def read_with_retry(what: str, fn: Callable[[], T], retries: int, clock: Clock | None) -> T:
    """A read retried on transient errors; an ApplierError carrying the API server's answer."""
    try:
        return call_with_retry(what, fn, retries, clock)
    except KubeError as err:
        raise ApplierError(_after(err, retries)) from err


def update_with_retry(
    what: str,
    read: Callable[[], Obj],
    mutate: Callable[[Obj], bool],
    write: Callable[[Obj], Obj],
    retries: int,
    clock: Clock | None = None,
) -> Obj | None:
    """Read, mutate (False = nothing to change), write with its resourceVersion; retry on 409."""

    def once() -> Obj | None:
        obj = read()
        if not mutate(obj):
            return None
        return write(obj)

    try:
        return call_with_retry(what, once, retries, clock, conflicts=True)
    except Conflict as err:
        raise ApplierError(
            f"{what}: still conflicting after {retries + 1} attempts (another writer)"
        ) from err
    except KubeError as err:
        raise ApplierError(_after(err, retries)) from err


def _after(error: KubeError, retries: int) -> str:
    if transient(error) and retries > 0:
        return f"{error} (after {retries + 1} attempts)"
    return str(error)


def rollout_done(deployment: Obj) -> tuple[bool, str]:
    """Whether a Deployment finished rolling out (as ``kubectl rollout status`` judges it)."""
    meta, spec, status = deployment["metadata"], deployment["spec"], deployment.get("status") or {}
    want = int(spec.get("replicas", 1))
    observed = int(status.get("observedGeneration") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    detail = (
        f"generation {meta.get('generation')} observed {observed}, "
        f"{updated}/{want} updated, {available} available, {total} total"
    )
    done = observed >= int(meta.get("generation") or 0) and updated == want
    return done and total == updated and available == updated, detail


def wait_for_rollout(
    get: Callable[[], Obj],
    what: str,
    timeout_s: float,
    clock: Clock,
    poll_s: float = 0.2,
    retries: int = 2,
) -> None:
    """Poll until the rollout finishes; ApplierError with the last status after ``timeout_s``."""
    deadline = clock.now() + timeout_s
    while True:
        done, detail = rollout_done(read_with_retry(what, get, retries, clock))
        if done:
            return
        if clock.now() >= deadline:
            raise ApplierError(f"{what}: rollout did not finish within {timeout_s:g}s ({detail})")
        clock.sleep(poll_s)


def as_int(kind: str, target: str, value: Any, minimum: int, maximum: int) -> int:
    """An integer in bounds (integral floats accepted) or an ApplierError naming the target."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ApplierError(
            f"{kind}: {target}: must be an integer {minimum}..{maximum}, got {value!r}"
        )
    return value
