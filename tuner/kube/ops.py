"""Shared moves of the Kubernetes appliers: target names, conflict retries, rollout waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneloop.clock import Clock
from tuner.appliers.base import ApplierError
from tuner.kube.client import Conflict, KubeError, Obj


def split(kind: str, target: str, parts: int, key: bool, shape: str) -> tuple[list[str], str]:
    """Split ``a/b[/c][:key]`` into path parts and the key; ApplierError naming ``shape``."""
    path, sep, name = target.partition(":") if key else (target, "", "")
    pieces = path.split("/")
    if len(pieces) != parts or not all(pieces) or (key and (not sep or not name)):
        raise ApplierError(f"{kind}: target must be {shape!r}, got {target!r}")
    return pieces, name


def update_with_retry(
    what: str,
    read: Callable[[], Obj],
    mutate: Callable[[Obj], bool],
    write: Callable[[Obj], Obj],
    retries: int,
) -> Obj | None:
    """Read, mutate (False = nothing to change), write with its resourceVersion; retry on 409."""
    for _ in range(retries + 1):
        try:
            obj = read()
            if not mutate(obj):
                return None
            return write(obj)
        except Conflict:
            continue
        except KubeError as err:
            raise ApplierError(str(err)) from err
    raise ApplierError(f"{what}: still conflicting after {retries + 1} attempts (another writer)")


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
    get: Callable[[], Obj], what: str, timeout_s: float, clock: Clock, poll_s: float = 0.2
) -> None:
    """Poll until the rollout finishes; ApplierError with the last status after ``timeout_s``."""
    deadline = clock.now() + timeout_s
    while True:
        try:
            done, detail = rollout_done(get())
        except KubeError as err:
            raise ApplierError(str(err)) from err
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
