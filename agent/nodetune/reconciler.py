"""Reconcile a node's sysctls with a desired state: snapshot, apply, verify, roll back.

Order of an apply: validate against the target (key present, per-namespace, congestion control
available) -> plan (keys whose normalised value differs) -> journal the previous values with the
generation and state ``applying`` (fsync) -> write each key, read it back, compare normalised ->
journal ``applied``. Any failure rolls back every key already written, in reverse order, to the
snapshot and journals ``failed`` with the reason.

Decisions:

- Idempotent: when nothing differs and the generation is already the applied one, nothing is
  written, not even the journal. A drifted value (someone ran ``sysctl -w``, or the node rebooted)
  shows up in the plan and is set again.
- A generation that failed, or that an operator rolled back, is not applied again on its own:
  retrying a value that broke something would flap the node. A new generation in the desired
  file, or ``force=True``, applies it.
- ``resume()`` at start rolls an in-flight apply (the process died midway) *back* to its
  snapshot rather than completing it. The snapshot is the last state known to work; an apply
  that died midway is exactly the case where the new values may be the cause. It is journaled
  as a failure with reason ``interrupted``, so the same generation is not retried by itself.
- Dry run plans and reports but writes nothing: no sysctl, no journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.nodetune import journal as journal_io
from agent.nodetune.allowlist import AVAILABLE_CC_KEY, lookup, read_back_equal
from agent.nodetune.desired import Desired, DesiredStateError
from agent.nodetune.journal import Journal
from agent.nodetune.sysctl import SysctlError, SysctlFS


def canonical(text: str) -> str:
    """Kernel text with whitespace runs collapsed to one space."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Change:
    """One key whose current value differs from the desired one."""

    key: str
    current: str
    desired: str


@dataclass
class ApplyResult:
    """What an apply, rollback or resume did."""

    generation: int | None
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False
    written: list[str] = field(default_factory=list)
    rolled_back: bool = False
    skipped: str = ""  # why nothing was attempted, when so
    error: str = ""

    @property
    def ok(self) -> bool:
        """True unless the apply failed."""
        return not self.error


class ApplyFailure(Exception):
    """A write or a read-back failed; ``reason`` is the failure metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Reconciler:
    """Applies desired sysctls under ``procfs`` (in namespace ``netns`` when given)."""

    def __init__(
        self,
        procfs: Path,
        journal_path: Path,
        dry_run: bool = False,
        *,
        netns: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fs = SysctlFS(Path(procfs), netns)
        self.journal_path = Path(journal_path)
        self.dry_run = dry_run
        self.clock = clock

    # -- reading ---------------------------------------------------------------------------

    def journal(self) -> Journal:
        """The journal as stored."""
        return journal_io.load(self.journal_path)

    def current(self, keys: list[str]) -> dict[str, str]:
        """Normalised current value of each key."""
        return {key: canonical(self.fs.read(key)) for key in keys}

    def check_target(self, desired: Desired) -> None:
        """Raise DesiredStateError if a key cannot be set on this target."""
        problems: list[str] = []
        for key, value in desired.sysctls.items():
            spec = lookup(key)
            if self.fs.netns is not None and not spec.per_netns:
                problems.append(f"{key}: global sysctl, cannot be set in namespace {self.fs.netns}")
            elif not self.fs.exists(key):
                problems.append(f"{key}: not present at {self.fs.path(key)}")
            elif key == "net.ipv4.tcp_congestion_control":
                available = self.fs.read(AVAILABLE_CC_KEY).split()
                if value not in available:
                    problems.append(f"{key}: {value!r} is not available (have {available})")
        if problems:
            raise DesiredStateError(f"{self.fs.describe()}: " + "; ".join(problems))

    def plan(self, desired: Desired) -> list[Change]:
        """Keys whose current value differs from ``desired`` (validated against the target)."""
        self.check_target(desired)
        current = self.current(list(desired.sysctls))
        return [
            Change(key, current[key], value)
            for key, value in desired.sysctls.items()
            if not read_back_equal(key, value, current[key])
        ]

    # -- changing --------------------------------------------------------------------------

    def _save(self, journal: Journal) -> None:
        if not self.dry_run:
            journal_io.save(self.journal_path, journal)

    def _write_verified(self, key: str, value: str) -> None:
        try:
            self.fs.write(key, value)
        except SysctlError as exc:
            raise ApplyFailure("write", str(exc)) from exc
        try:
            back = self.fs.read(key)
        except SysctlError as exc:
            raise ApplyFailure("verify", str(exc)) from exc
        if not read_back_equal(key, value, back):
            raise ApplyFailure("verify", f"{key}: wrote {value!r}, read back {canonical(back)!r}")

    def _restore(self, values: dict[str, str]) -> list[str]:
        """Set every key in ``values`` that differs; returns the keys written."""
        written: list[str] = []
        for key in reversed(list(values)):
            if read_back_equal(key, values[key], self.fs.read(key)):
                continue
            self._write_verified(key, values[key])
            written.append(key)
        return written

    def apply(self, desired: Desired, *, force: bool = False) -> ApplyResult:
        """Bring the target to ``desired``; roll back what was written on any failure."""
        journal = self.journal()
        result = ApplyResult(desired.generation, dry_run=self.dry_run)
        try:
            changes = self.plan(desired)
        except DesiredStateError as exc:
            journal.count_failure("validation", str(exc))
            self._save(journal)
            raise
        result.changes = changes
        if self.dry_run:
            return result
        same_generation = journal.generation == desired.generation
        if same_generation and journal.state in ("failed", "rolled_back") and not force:
            result.skipped = (
                f"generation {desired.generation} is {journal.state.replace('_', ' ')}; "
                "bump the generation or force to apply it again"
            )
            return result
        if not changes:
            if journal.applied_generation != desired.generation or journal.state != "applied":
                journal.desired_generation = desired.generation
                journal.applied_generation = desired.generation
                journal.generation = desired.generation
                journal.desired = dict(desired.sysctls)
                journal.state = "applied"
                self._save(journal)
            else:
                result.skipped = "already applied"
            return result

        journal.state = "applying"
        journal.generation = desired.generation
        journal.desired_generation = desired.generation
        journal.desired = dict(desired.sysctls)
        journal.snapshot = {c.key: c.current for c in changes}
        journal.snapshot_generation = journal.applied_generation
        for change in changes:
            journal.baseline.setdefault(change.key, change.current)
        self._save(journal)  # durable before the first write

        try:
            for change in changes:
                result.written.append(change.key)  # counted before the write: it may half-apply
                self._write_verified(change.key, change.desired)
        except ApplyFailure as exc:
            result.error = str(exc)
            journal.count_failure(exc.reason, str(exc))
            self._roll_back_written(journal, result)
            journal.state = "failed"
            self._save(journal)
            return result

        journal.state = "applied"
        journal.applied_generation = desired.generation
        journal.last_apply_timestamp = self.clock()
        journal.last_error = ""
        self._save(journal)
        return result

    def _roll_back_written(self, journal: Journal, result: ApplyResult) -> None:
        subset = {k: journal.snapshot[k] for k in result.written if k in journal.snapshot}
        try:
            self._restore(subset)
            result.rolled_back = True
        except (ApplyFailure, SysctlError) as exc:
            journal.count_failure("rollback", str(exc))
            result.error += f"; rollback failed: {exc}"

    def rollback(self, *, baseline: bool = False) -> ApplyResult:
        """Restore the last apply's snapshot (or every key's first-seen value with baseline)."""
        journal = self.journal()
        target = journal.baseline if baseline else journal.snapshot
        result = ApplyResult(journal.generation, dry_run=self.dry_run, rolled_back=True)
        if not target:
            result.rolled_back = False
            result.skipped = "nothing to roll back"
            return result
        current = self.current(list(target))
        result.changes = [
            Change(k, current[k], v) for k, v in target.items() if current[k] != canonical(v)
        ]
        if self.dry_run:
            return result
        try:
            result.written = self._restore(dict(target))
        except (ApplyFailure, SysctlError) as exc:
            reason = exc.reason if isinstance(exc, ApplyFailure) else "write"
            journal.count_failure("rollback", f"{reason}: {exc}")
            result.error = str(exc)
            result.rolled_back = False
            self._save(journal)
            return result
        journal.state = "rolled_back"
        journal.applied_generation = None if baseline else journal.snapshot_generation
        self._save(journal)
        return result

    def resume(self) -> ApplyResult:
        """At start: roll back an apply the journal shows in flight; otherwise do nothing."""
        journal = self.journal()
        if journal.state != "applying":
            return ApplyResult(journal.generation, skipped=f"journal state {journal.state}")
        result = ApplyResult(journal.generation, dry_run=self.dry_run)
        current = self.current(list(journal.snapshot))
        result.changes = [
            Change(k, current[k], v) for k, v in journal.snapshot.items() if current[k] != v
        ]
        if self.dry_run:
            return result
        message = f"apply of generation {journal.generation} was interrupted; rolled back"
        journal.count_failure("interrupted", message)
        try:
            result.written = self._restore(dict(journal.snapshot))
            result.rolled_back = True
        except (ApplyFailure, SysctlError) as exc:
            journal.count_failure("rollback", str(exc))
            result.error = f"{message} failed: {exc}"
        journal.state = "failed"
        self._save(journal)
        return result
