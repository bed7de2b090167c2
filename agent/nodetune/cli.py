"""``tuneloop-agent nodetune apply|rollback|status|watch``.

Each subcommand sets ``func`` (``args -> exit code``) on its parser. Exit codes: 0 done (or
nothing to do), 1 an apply or rollback failed (and was rolled back where possible), 2 the desired
state or the journal is invalid (nothing was written).

``watch`` follows a file projected from a ConfigMap. Kubernetes updates such a file by swapping
a ``..data`` symlink, so the path's own mtime may never change: the loop hashes the content of the
resolved target every interval, re-reads the desired state when the hash changes, and re-applies
the current one every interval otherwise (an idempotent apply reads only, and corrects drift).

Every subcommand that changes the node starts with crash recovery (the reconciler's ``apply`` and
``rollback`` run it first), so a ``rollback_failed`` journal is retried on every entry and every
``watch`` interval. ``TUNELOOP_NODETUNE_STOP_AT`` stops the process at a numbered crash point,
for crash tests (see ``agent.nodetune.crashpoints``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from agent.nodetune.crashpoints import checkpoint_from_env
from agent.nodetune.desired import Desired, DesiredStateError, content_hash, load_desired
from agent.nodetune.journal import JournalError, history
from agent.nodetune.reconciler import ApplyResult, Reconciler
from agent.nodetune.sysctl import SysctlError

DEFAULT_JOURNAL = Path("/var/lib/tuneloop/nodetune-journal.json")
HISTORY_SHOWN = 20


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--procfs", type=Path, default=Path("/proc"), help="procfs root")
    parser.add_argument(
        "--netns", type=Path, default=None, help="network namespace file to apply in"
    )
    parser.add_argument("--journal", type=Path, default=DEFAULT_JOURNAL, help="journal file")


def _reconciler(args: argparse.Namespace) -> Reconciler:
    return Reconciler(
        args.procfs,
        args.journal,
        getattr(args, "dry_run", False),
        netns=args.netns,
        checkpoint=checkpoint_from_env(),
    )


def _report_recovery(recovery: ApplyResult, out: TextIO) -> None:
    for key in recovery.written:
        print(f"recovered {key}: restored", file=out)
    if recovery.error:
        print(f"recovery failed (retried on the next run): {recovery.error}", file=out)
    else:
        print(f"recovered: values from before generation {recovery.generation} restored", file=out)


def report(result: ApplyResult, out: TextIO) -> int:
    """Print what happened; the exit code."""
    if result.recovery is not None:
        _report_recovery(result.recovery, out)
    prefix = "would change" if result.dry_run or result.skipped else "change"
    for change in result.changes:
        print(f"{prefix} {change.key}: {change.current!r} -> {change.desired!r}", file=out)
    if result.skipped:
        print(f"nothing done: {result.skipped}", file=out)
    elif result.error:
        state = "rolled back" if result.rolled_back else "NOT rolled back"
        print(f"failed ({state}): {result.error}", file=out)
        return 1
    if result.recovery is not None and not result.recovery.ok:
        return 1
    elif not result.changes:
        print("nothing to change", file=out)
    elif not result.dry_run and result.rolled_back:
        print(f"rolled back: values from before generation {result.generation}", file=out)
    elif not result.dry_run:
        print(f"done: generation {result.generation}", file=out)
    return 0


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (DesiredStateError, JournalError, SysctlError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def cmd_apply(args: argparse.Namespace) -> int:
    """Apply a desired-state file once."""
    reconciler = _reconciler(args)
    desired = load_desired(args.desired)
    return report(reconciler.apply(desired, force=args.force), sys.stdout)


def cmd_rollback(args: argparse.Namespace) -> int:
    """Restore the last snapshot (or the baseline)."""
    return report(_reconciler(args).rollback(baseline=args.baseline), sys.stdout)


def status(reconciler: Reconciler) -> dict[str, Any]:
    """The journal, the live values of the keys it mentions and the last recorded events."""
    journal = reconciler.journal()
    keys = sorted(set(journal.desired) | set(journal.snapshot) | set(journal.baseline))
    return {
        "journal": journal.to_json(),
        "current": reconciler.current(keys),
        "history": history(reconciler.journal_path)[-HISTORY_SHOWN:],
    }


def cmd_status(args: argparse.Namespace) -> int:
    """Print the status as JSON."""
    print(json.dumps(status(_reconciler(args)), indent=2, sort_keys=True))
    return 0


def watch(
    reconciler: Reconciler,
    desired_path: Path,
    interval_s: float,
    *,
    max_iterations: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    out: TextIO = sys.stdout,
) -> int:
    """Recover, then apply the desired file whenever it changes (and correct drift)."""
    try:
        recovery = reconciler.recover()
        if not recovery.skipped:
            _report_recovery(recovery, out)
    except (SysctlError, JournalError) as exc:
        print(f"error: {exc}", file=out)
    seen_hash = ""
    desired: Desired | None = None
    iteration = 0
    while max_iterations is None or iteration < max_iterations:
        iteration += 1
        try:
            digest = content_hash(desired_path)
        except OSError as exc:
            print(f"error: {desired_path}: cannot read: {exc}", file=out)
            digest = seen_hash
        changed = digest != seen_hash
        if changed:
            seen_hash = digest
            try:
                desired = load_desired(desired_path)
            except DesiredStateError as exc:
                print(f"error: {exc}", file=out)
                desired = None
        if desired is not None:
            try:
                result = reconciler.apply(desired)
                if (
                    changed
                    or not result.ok
                    or result.recovery
                    or (result.changes and not result.skipped)
                ):
                    report(result, out)
            except (DesiredStateError, SysctlError, JournalError) as exc:
                print(f"error: {exc}", file=out)
                desired = None  # wait for the file to change before trying again
        if max_iterations is None or iteration < max_iterations:
            sleep(interval_s)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Run the watch loop."""
    return watch(_reconciler(args), args.desired, args.interval, max_iterations=args.iterations)


def add_nodetune_commands(subparsers: Any) -> None:
    """Add ``nodetune`` and its subcommands to an argparse subparsers object."""
    nodetune = subparsers.add_parser("nodetune", help="reconcile allowlisted TCP sysctls")
    sub = nodetune.add_subparsers(dest="nodetune_command", required=True)

    apply = sub.add_parser("apply", help="apply a desired-state file once")
    apply.add_argument("--desired", type=Path, required=True, help="desired-state YAML or JSON")
    apply.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    apply.add_argument("--force", action="store_true", help="re-apply a failed generation")
    _common(apply)
    apply.set_defaults(func=_guarded(cmd_apply))

    rollback = sub.add_parser("rollback", help="restore the values before the last apply")
    rollback.add_argument("--baseline", action="store_true", help="restore first-seen values")
    rollback.add_argument("--dry-run", action="store_true", help="print, write nothing")
    _common(rollback)
    rollback.set_defaults(func=_guarded(cmd_rollback))

    show = sub.add_parser("status", help="print the journal and current values as JSON")
    _common(show)
    show.set_defaults(func=_guarded(cmd_status))

    follow = sub.add_parser("watch", help="apply the desired file whenever it changes")
    follow.add_argument("--desired", type=Path, required=True, help="desired-state YAML or JSON")
    follow.add_argument("--interval", type=float, default=10.0, help="seconds between checks")
    follow.add_argument("--iterations", type=int, default=None, help="stop after N checks")
    _common(follow)
    follow.set_defaults(func=_guarded(cmd_watch))


def main(argv: list[str] | None = None) -> int:
    """Standalone entry: ``python -m agent.nodetune.cli nodetune apply ...``."""
    parser = argparse.ArgumentParser(prog="tuneloop-agent")
    add_nodetune_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
