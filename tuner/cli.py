"""``tuneloop`` command line: ``tune``, ``status``, ``rollback``, ``report``, ``audit``,
``controller`` (and ``demo``, ``sim``, ``generate`` from their packages).

Each command is added by one ``add_<name>_command(subparsers)`` function and runs as
``cmd_<name>(args, factories)``; loops are built by :func:`tuner.wiring.build_loop`. Flags mean
the same everywhere: ``--state DIR`` (the state directory), ``--experiment NAME``, ``--output
text|json`` (what is printed), ``--out DIR`` (where files go). Logging is configured once here
(``--log-format``, ``--log-level``, before the command). Exit status: 0 done; 1 a failure talking
to the system (``error: ...``); 2 an error in a file or flag (``error: <field>: <reason>``); 3 a
run with no valid feasible trial; 4 a run stopped because its signals kept failing (the system was
left on a measured configuration).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tuneloop.logs import add_logging_arguments, configure_logging
from tuneloop.validation import ConfigError, duration
from tuner.appliers.base import ApplierError
from tuner.audit import AuditLog
from tuner.check_cmd import add_check_command
from tuner.preflight import PreflightError
from tuner.signals.base import SignalError
from tuner.spec import load_experiment, loads_experiment
from tuner.status import audit_text, dumps, filter_entries, status_data, status_text
from tuner.store import StoreError, TrialStore
from tuner.wiring import Factories, build_loop, event_sink, state_paths
from tuner.writer_lock import WRITER_TTL_S, HeartbeatClock

log = logging.getLogger(__name__)

DEFAULT_STATE = "./tuneloop-state"
EXIT_NO_RESULT = 3
EXIT_SIGNALS_FAILED = 4
OUTPUTS = ("text", "json")


def package_version() -> str:
    try:
        return version("tuneloop")
    except PackageNotFoundError:
        return "unknown"


def _state_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", default=DEFAULT_STATE, help="state directory (trial store)")


def _experiment_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", default=None, help="only this experiment")


def _output_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=OUTPUTS, default="text", help="what to print")


def cmd_tune(args: argparse.Namespace, factories: Factories) -> int:
    """One writer (the store's lock), preflight, then the loop to its budget."""
    exp = load_experiment(args.experiment)
    appliers = factories.appliers(exp)  # a bad target or bound fails before anything opens
    clock = HeartbeatClock(factories.clock())
    db, _ = state_paths(args.state)
    Path(args.state).mkdir(parents=True, exist_ok=True)
    store = TrialStore(db, clock)
    try:
        clock.hold(store.acquire_writer(exp.name, ttl_s=WRITER_TTL_S))
        loop = build_loop(exp, factories, args.state, store=store, clock=clock, appliers=appliers)
        try:
            loop.preflight()
            result = loop.run(max_trials=args.trials, apply=True if args.apply else None)
        finally:
            if args.metrics_file:
                loop.metrics.write_textfile(args.metrics_file)
    finally:
        store.close()  # releases the writer lock
    if result.signals_failed:
        print(f"error: {result.stopped}", file=sys.stderr)
        return EXIT_SIGNALS_FAILED
    return 0 if result.best is not None or result.stopped == "advisory" else EXIT_NO_RESULT


def add_tune_command(sub: Any) -> None:
    p = sub.add_parser("tune", help="run an experiment to its budget")
    p.add_argument("experiment", help="experiment YAML file")
    p.add_argument("--apply", action="store_true", help="change the system (default: advisory)")
    _state_arg(p)
    p.add_argument("--trials", type=int, default=None, help="override the trial budget")
    p.add_argument("--metrics-file", default=None, help="write metrics in textfile format here")
    p.set_defaults(func=cmd_tune)


def _existing_store(state: str) -> TrialStore | None:
    """The trial store under ``state``; None (with the error printed) when there is none."""
    db, _ = state_paths(state)
    if not db.exists():
        print(f"error: no trial store in {state}", file=sys.stderr)
        return None
    return TrialStore(db)


def cmd_status(args: argparse.Namespace, factories: Factories) -> int:
    store = _existing_store(args.state)
    if store is None:
        return 1
    try:
        if args.output == "json":
            print(dumps(status_data(store, args.experiment)))
        else:
            print(status_text(store, args.experiment))
    finally:
        store.close()
    return 0


def add_status_command(sub: Any) -> None:
    p = sub.add_parser("status", help="experiments and their trials")
    _state_arg(p)
    _experiment_arg(p)
    _output_arg(p)
    p.set_defaults(func=cmd_status)


def cmd_rollback(args: argparse.Namespace, factories: Factories) -> int:
    store = _existing_store(args.state)
    if store is None:
        return 1
    try:
        names = [e["name"] for e in store.experiments()]
        name = args.experiment
        if name is None:
            if len(names) != 1:
                print(
                    f"error: --experiment: choose one of {', '.join(names) or '(none)'}",
                    file=sys.stderr,
                )
                return 2
            name = names[0]
        exp = loads_experiment(store.experiment_spec(name), f"{name} (stored spec)")
        loop = build_loop(exp, factories, args.state, store=store)
        restored = loop.rollback(args.to)
        print(f"rolled back {name} to {args.to}: {restored}")
    finally:
        store.close()
    return 0


def add_rollback_command(sub: Any) -> None:
    p = sub.add_parser("rollback", help="restore the snapshot taken before the first change")
    _state_arg(p)
    _experiment_arg(p)
    p.add_argument("--to", choices=("initial", "incumbent"), default="initial")
    p.set_defaults(func=cmd_rollback)


def cmd_report(args: argparse.Namespace, factories: Factories) -> int:
    from tuner.report import write_report

    store = _existing_store(args.state)
    if store is None:
        return 1
    try:
        out = args.out or Path(args.state) / "report"
        paths = write_report(store, out, args.experiment)
    finally:
        store.close()
    if args.output == "json":
        print(dumps({"files": [str(p) for p in paths]}))
    else:
        for path in paths:
            print(path)
    return 0


def add_report_command(sub: Any) -> None:
    p = sub.add_parser("report", help="Markdown report with a convergence plot")
    _state_arg(p)
    p.add_argument("-o", "--out", default=None, help="output directory (default STATE/report)")
    _experiment_arg(p)
    _output_arg(p)
    p.set_defaults(func=cmd_report)


def cmd_audit(args: argparse.Namespace, factories: Factories) -> int:
    state = args.state_dir or args.state
    _, audit_path = state_paths(state)
    if not audit_path.exists():
        print(f"error: no audit log in {state}", file=sys.stderr)
        return 1
    since = None
    if args.since is not None:
        since = factories.clock().now() - duration(args.since, "--since")
    entries = filter_entries(AuditLog(audit_path).entries(), args.experiment, since)
    print(dumps({"entries": entries}) if args.output == "json" else audit_text(entries))
    return 0


def add_audit_command(sub: Any) -> None:
    p = sub.add_parser("audit", help="read the audit log: every change, when, why, and its result")
    p.add_argument("state_dir", nargs="?", default=None, help="state directory (or --state)")
    _state_arg(p)
    _experiment_arg(p)
    p.add_argument("--since", default=None, help="only entries newer than this, e.g. 30m, 2h")
    _output_arg(p)
    p.set_defaults(func=cmd_audit)


def cmd_controller(args: argparse.Namespace, factories: Factories) -> int:
    from tuner.controller_config import load_controller_config
    from tuner.controller_run import run_controller

    config = load_controller_config(args.config)
    if factories.event_sink is None:
        experiments = [load_experiment(path) for path in config.experiments]
        factories = replace(factories, event_sink=event_sink(factories, experiments))
    return run_controller(config, factories)


def add_controller_command(sub: Any) -> None:
    p = sub.add_parser("controller", help="continuous re-tuning with leader election")
    p.add_argument("--config", required=True, help="controller YAML file")
    p.set_defaults(func=cmd_controller)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuneloop",
        description="tuneloop tuner: Bayesian optimization of LLM-serving knobs (balancer "
        "weights, batch sizes, replicas, TCP buffers) under SLO constraints, with dry-run by "
        "default, rollback and a durable record of every trial.",
    )
    parser.add_argument("--version", action="version", version=f"tuneloop {package_version()}")
    add_logging_arguments(parser)
    parser.set_defaults(log_format=None, log_level=None)  # None: not given (see _configure_logs)
    sub = parser.add_subparsers(dest="command", required=True)
    add_tune_command(sub)
    add_check_command(sub)
    add_status_command(sub)
    add_rollback_command(sub)
    add_report_command(sub)
    add_audit_command(sub)
    add_controller_command(sub)
    _add_package_commands(sub)
    return parser


# Commands that act through the tuner's factories; the others take only their arguments.
FACTORY_COMMANDS = frozenset(
    {"tune", "check", "status", "rollback", "report", "audit", "controller", "shift"}
)


def _add_package_commands(sub: Any) -> None:
    """Commands that live with their packages (demo, simulation, generation, schemas, shift)."""
    from tuneloop.generate.cli import add_generate_command
    from tuner.demo import add_demo_command
    from tuner.schema_cmd import add_schema_command
    from tuner.shift.cmd import add_shift_command
    from tuner.sim.cli import add_sim_commands

    add_demo_command(sub)
    add_sim_commands(sub)
    add_generate_command(sub)
    add_schema_command(sub)
    add_shift_command(sub)


def _configure_logs(args: argparse.Namespace) -> None:
    """Configure logging from the flags (text, info by default). A process that set up logging
    before calling :func:`main` (a program embedding the CLI, a test runner capturing logs)
    keeps its own set-up unless a logging flag is given."""
    given = args.log_format is not None or args.log_level is not None
    if given or not logging.getLogger().handlers:
        configure_logging(args.log_format or "text", args.log_level or "info")


def main(argv: Sequence[str] | None = None, factories: Factories | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logs(args)
    try:
        if args.command not in FACTORY_COMMANDS:
            return int(args.func(args))
        return int(args.func(args, factories or Factories()))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ApplierError, SignalError, StoreError, PreflightError, OSError) as exc:
        log.debug("%s failed", args.command, exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
