"""Reconcile a node's sysctls with a desired state: snapshot, apply, verify, roll back.

Order of an apply: recover (below) -> validate against the target (key present, per-namespace,
congestion control available) -> plan (keys whose normalised value differs) -> journal the values
found and the values a rollback returns to, with state ``applying`` (fsynced) -> write each key,
read it back, compare normalised -> journal ``applied``. Any failure journals ``rolling_back``
(fsynced) and restores every snapshot key, in reverse order, then journals ``failed``; if the
restore itself fails the journal says ``rollback_failed`` and lists the keys not yet restored.

Decisions:

- Crash recovery runs first in every entry point (``apply``, ``rollback``, and so the CLI,
  ``watch`` and the agent's background loop): a journal left ``applying`` is rolled *back* to its
  snapshot rather than completed (the snapshot is the last state known to work; an apply that
  died midway is exactly the case where the new values may be the cause) and counted as a
  failure with reason ``interrupted``; ``rolling_back`` and ``rollback_failed`` retry the pending
  restore. A restore that still fails leaves ``rollback_failed`` for the next entry.
- Originals are never overwritten. A generation applied over a settled journal snapshots the
  values it found. A generation applied while a restore is still pending (``rollback_failed``)
  records what it found in ``found`` but keeps the pending originals as its snapshot, adding only
  keys they lack, so a rollback still returns to them. ``baseline`` keeps the first value ever
  seen per key for ``rollback --baseline``.
- Idempotent: when nothing differs and the generation is already the applied one, nothing is
  written, not even the journal. A drifted value (someone ran ``sysctl -w``, or the node rebooted)
  shows up in the plan and is set again.
- A generation that failed, or that an operator rolled back, is not applied again on its own:
  retrying a value that broke something would flap the node. A new generation in the desired
  file, or ``force=True``, applies it.
- Dry run plans and reports but writes nothing: no sysctl, no journal, no recovery.
- One writer at a time: ``recover``, ``apply`` and ``rollback`` hold an exclusive ``flock`` on
  ``<journal>.lock``, so an operator's ``nodetune rollback`` run with ``kubectl exec`` and the
  agent's background loop never interleave their journal writes.
- ``checkpoint`` is called after each durable journal write and around each sysctl write; it
  does nothing in production and lets a test stop the process at each point (see crashpoints).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.nodetune import journal as journal_io
from agent.nodetune.allowlist import AVAILABLE_CC_KEY, lookup, read_back_equal
from agent.nodetune.crashpoints import Checkpoint, no_checkpoint
from agent.nodetune.desired import Desired, DesiredStateError
from agent.nodetune.journal import Journal
from agent.nodetune.results import ApplyFailure, ApplyResult, Change
from agent.nodetune.sysctl import SysctlError, SysctlFS

UNREADABLE = "<unreadable>"


def canonical(text: str) -> str:
    """Kernel text with whitespace runs collapsed to one space."""
    return " ".join(text.split())


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
        checkpoint: Checkpoint = no_checkpoint,
    ) -> None:
        self.fs = SysctlFS(Path(procfs), netns)
        self.journal_path = Path(journal_path)
        self.dry_run = dry_run
        self.clock = clock
        self.checkpoint = checkpoint

    # -- reading ---------------------------------------------------------------------------

    def journal(self) -> Journal:
        """The journal as stored."""
        return journal_io.load(self.journal_path)

    def current(self, keys: list[str]) -> dict[str, str]:
        """Normalised current value of each key."""
        return {key: canonical(self.fs.read(key)) for key in keys}

    def _differences(self, target: dict[str, str]) -> list[Change]:
        """Keys of ``target`` that do not read back as their value (unreadable ones included)."""
        changes: list[Change] = []
        for key, value in target.items():
            try:
                current = canonical(self.fs.read(key))
            except SysctlError:
                current = UNREADABLE
            if current == UNREADABLE or not read_back_equal(key, value, current):
                changes.append(Change(key, current, value))
        return changes

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

    # -- durable steps ---------------------------------------------------------------------

    def _exclusive(self) -> contextlib.AbstractContextManager[None]:
        """The journal's lock (nothing in a dry run, which writes nothing)."""
        return contextlib.nullcontext() if self.dry_run else journal_io.locked(self.journal_path)

    def _save(self, journal: Journal, **details: Any) -> None:
        """Record the event, then write the journal; both fsynced before this returns."""
        if self.dry_run:
            return
        event = {"time": self.clock(), "state": journal.state, "generation": journal.generation}
        journal_io.record(self.journal_path, {**event, **details})
        journal_io.save(self.journal_path, journal)
        self.checkpoint(f"journal {journal.state}")

    def _write_verified(self, key: str, value: str) -> None:
        self.checkpoint(f"before write {key}")
        try:
            self.fs.write(key, value)
        except SysctlError as exc:
            raise ApplyFailure("write", str(exc)) from exc
        self.checkpoint(f"after write {key}")
        try:
            back = self.fs.read(key)
        except SysctlError as exc:
            raise ApplyFailure("verify", str(exc)) from exc
        if not read_back_equal(key, value, back):
            raise ApplyFailure("verify", f"{key}: wrote {value!r}, read back {canonical(back)!r}")

    def _restore(self, values: dict[str, str]) -> tuple[list[str], dict[str, str], str]:
        """Set every key that differs, last first, trying each: (written, not restored, errors).

        A key that fails does not stop the others: a half-restored node is closer to its
        originals than one whose restore stopped at the first refusal.
        """
        written: list[str] = []
        errors: list[str] = []
        left: dict[str, str] = {}
        for key in reversed(list(values)):
            try:
                if read_back_equal(key, values[key], self.fs.read(key)):
                    continue
                self._write_verified(key, values[key])
            except (ApplyFailure, SysctlError) as exc:
                left[key] = values[key]
                errors.append(str(exc))
                continue
            written.append(key)
        return written, {k: v for k, v in values.items() if k in left}, "; ".join(errors)

    def _begin_restore(self, journal: Journal, target: dict[str, str], kind: str) -> None:
        """Journal the restore about to start (fsynced before its first write)."""
        journal.state = "rolling_back"
        journal.restore = dict(target)
        journal.restore_kind = kind
        self._save(journal, restore=journal.restore, kind=kind)

    def _settle(self, journal: Journal) -> tuple[list[str], str]:
        """Carry out the journal's pending restore and record how it ended."""
        written, left, error = self._restore(dict(journal.restore))
        if left:
            message = f"{error} (not restored: {', '.join(sorted(left))})"
            journal.restore = left
            journal.state = "rollback_failed"
            journal.count_failure("rollback", message)
            self._save(journal, restored=written, not_restored=left, error=error)
            return written, message
        kind = journal.restore_kind
        journal.restore, journal.restore_kind = {}, ""
        if kind == "apply":
            journal.state = "failed"
        else:
            journal.state = "rolled_back"
            journal.applied_generation = None if kind == "baseline" else journal.snapshot_generation
        self._save(journal, restored=written)
        return written, ""

    # -- entry points ----------------------------------------------------------------------

    def recover(self) -> ApplyResult:
        """Settle a journal a crash or a failed restore left open; nothing when it is settled."""
        with self._exclusive():
            return self._recover()

    def _recover(self) -> ApplyResult:
        journal = self.journal()
        result = ApplyResult(journal.generation, dry_run=self.dry_run)
        if not journal.unrecovered:
            result.skipped = f"journal state {journal.state}"
            return result
        pending = journal.snapshot if journal.state == "applying" else journal.restore
        result.changes = self._differences(pending)
        if self.dry_run:
            return result
        if journal.state == "applying":
            message = f"apply of generation {journal.generation} was interrupted"
            journal.count_failure("interrupted", message)
            self._begin_restore(journal, dict(journal.snapshot), "apply")
        written, error = self._settle(journal)
        result.written = written
        result.rolled_back = not error
        result.error = (
            f"restore after generation {journal.generation} failed: {error}" if error else ""
        )
        return result

    def _originals(self, journal: Journal, changes: list[Change]) -> dict[str, str]:
        """What a rollback of the generation about to be applied returns to."""
        if not journal.unrecovered:
            return {c.key: c.current for c in changes}
        kept = {**journal.snapshot, **journal.restore}  # a pending restore is never dropped
        for change in changes:
            kept.setdefault(change.key, change.current)
        return kept

    def apply(self, desired: Desired, *, force: bool = False) -> ApplyResult:
        """Recover, then bring the target to ``desired``; roll back on any failure."""
        with self._exclusive():
            return self._apply(desired, force)

    def _apply(self, desired: Desired, force: bool) -> ApplyResult:
        recovery = None if self.dry_run else self._recover()
        journal = self.journal()
        result = ApplyResult(desired.generation, dry_run=self.dry_run)
        if recovery is not None and not recovery.skipped:
            result.recovery = recovery
        try:
            changes = self.plan(desired)
        except DesiredStateError as exc:
            journal.count_failure("validation", str(exc))
            self._save(journal, error=str(exc))
            raise
        result.changes = changes
        if self.dry_run:
            return result
        pinned = ("failed", "rolled_back", "rollback_failed")
        if journal.generation == desired.generation and journal.state in pinned and not force:
            result.skipped = (
                f"generation {desired.generation} is {journal.state.replace('_', ' ')}; "
                "bump the generation or force to apply it again"
            )
            return result
        unrecovered = journal.unrecovered
        if (
            not changes
            and not unrecovered
            and journal.state == "applied"
            and (journal.applied_generation == desired.generation)
        ):
            result.skipped = "already applied"
            return result
        if changes or unrecovered:
            journal.snapshot = self._originals(journal, changes)
            if not unrecovered:
                journal.snapshot_generation = journal.applied_generation
        journal.restore, journal.restore_kind = {}, ""
        journal.generation = desired.generation
        journal.desired_generation = desired.generation
        journal.desired = dict(desired.sysctls)
        if not changes:
            journal.applied_generation = desired.generation
            journal.state = "applied"
            self._save(journal, desired=journal.desired)
            return result

        journal.found = {c.key: c.current for c in changes}
        for change in changes:
            journal.baseline.setdefault(change.key, change.current)
        journal.state = "applying"
        self._save(journal, found=journal.found, desired=journal.desired)  # before any write

        try:
            for change in changes:
                result.written.append(change.key)  # counted before the write: it may half-apply
                self._write_verified(change.key, change.desired)
        except ApplyFailure as exc:
            result.error = str(exc)
            journal.count_failure(exc.reason, str(exc))
            self._begin_restore(journal, dict(journal.snapshot), "apply")
            _, error = self._settle(journal)
            if error:
                result.error += f"; rollback failed: {error}"
            result.rolled_back = not error
            return result

        journal.state = "applied"
        journal.applied_generation = desired.generation
        journal.last_apply_timestamp = self.clock()
        journal.last_error = ""
        self._save(journal, written=result.written)
        return result

    def rollback(self, *, baseline: bool = False) -> ApplyResult:
        """Recover, then restore the snapshot (or every key's first-seen value with baseline)."""
        with self._exclusive():
            return self._rollback(baseline)

    def _rollback(self, baseline: bool) -> ApplyResult:
        recovery = None if self.dry_run else self._recover()
        journal = self.journal()
        target = journal.baseline if baseline else journal.snapshot
        result = ApplyResult(journal.generation, dry_run=self.dry_run, rolled_back=True)
        if recovery is not None and not recovery.skipped:
            result.recovery = recovery
        if not target:
            result.rolled_back = False
            result.skipped = "nothing to roll back"
            return result
        result.changes = self._differences(target)
        if self.dry_run:
            return result
        self._begin_restore(journal, dict(target), "baseline" if baseline else "rollback")
        result.written, error = self._settle(journal)
        if error:
            result.error = error
            result.rolled_back = False
        return result
