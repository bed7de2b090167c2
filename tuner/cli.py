"""``tuneloop`` command line: ``tune``, ``status``, ``rollback``, ``report``, ``controller``.

Each command is added by one ``add_<name>_command(subparsers)`` function, so more commands join
``build_parser`` in one line each. Appliers, signals and the clock come from :class:`Factories`;
the defaults build the appliers registry's instances, Prometheus and wall time, and callers (tests,
the simulated fleet) pass their own. Errors in an experiment file print ``error: <field>:
<reason>`` and exit 2; a failure talking to the system prints ``error: ...`` and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneloop.clock import Clock, RealClock
from tuneloop.validation import ConfigError
from tuner.appliers.base import Applier, ApplierError
from tuner.audit import AuditLog
from tuner.loop import TuningLoop
from tuner.metrics import TunerMetrics
from tuner.signals.base import SignalError, Signals
from tuner.spec import Experiment, load_experiment, loads_experiment
from tuner.store import StoreError, TrialStore

if TYPE_CHECKING:
    from tuner.kube.client import KubeClient

DEFAULT_STATE = "./tuneloop-state"


def registry_appliers(exp: Experiment) -> dict[str, Applier]:
    """Applier instances from the appliers registry; errors name ``appliers.<name>``."""
    from tuner.appliers.registry import build_applier

    return {
        name: build_applier(spec.kind, spec.options, f"appliers.{name}")
        for name, spec in exp.appliers.items()
    }


def prometheus_signals(exp: Experiment) -> Signals:
    """A Prometheus backend from the experiment's ``signals:`` section."""
    from tuner.signals.prometheus import PrometheusSignals

    url = exp.signals.get("prometheus")
    if not isinstance(url, str) or not url:
        raise ConfigError("signals.prometheus", "is required: the Prometheus base URL")
    return PrometheusSignals(url, timeout_s=exp.signals["timeout"], retries=exp.signals["retries"])


def cluster_client() -> KubeClient:
    """The in-cluster client (else the kubeconfig's) for Kubernetes Events."""
    from tuner.kube.client import KubeClient

    return KubeClient.connect()


@dataclass
class Factories:
    """How the CLI builds what an experiment needs."""

    appliers: Callable[[Experiment], dict[str, Applier]] = registry_appliers
    signals: Callable[[Experiment], Signals] = prometheus_signals
    clock: Callable[[], Clock] = RealClock
    event_sink: Callable[[dict[str, Any]], None] | None = None
    kube_events: Callable[[], KubeClient] = cluster_client
    extra: dict[str, Any] = field(default_factory=dict)


def event_sink(
    factories: Factories, experiments: Sequence[Experiment]
) -> Callable[[dict[str, Any]], None] | None:
    """The factories' sink, else Kubernetes Events when in a cluster (``KUBERNETES_SERVICE_HOST``
    set, or an experiment with a k8s-* applier); None when there is no API server to reach."""
    if factories.event_sink is not None:
        return factories.event_sink
    from tuner.kube.events import KubeEventSink, in_cluster

    if not in_cluster(experiments):
        return None
    try:
        client = factories.kube_events()
    except Exception as exc:  # the config loaders raise several types
        logging.getLogger(__name__).warning("no Kubernetes Events: %s", exc)
        return None
    return KubeEventSink(client, experiments)


def _paths(state: str) -> tuple[Path, Path]:
    root = Path(state)
    return root / "trials.db", root / "audit.jsonl"


def _state_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", default=DEFAULT_STATE, help="state directory (trial store)")


def cmd_tune(args: argparse.Namespace, factories: Factories) -> int:
    exp = load_experiment(args.experiment)
    db, audit_path = _paths(args.state)
    clock = factories.clock()
    store = TrialStore(db, clock)
    metrics = TunerMetrics()
    try:
        loop = TuningLoop(
            exp,
            factories.appliers(exp),
            factories.signals(exp),
            store,
            clock=clock,
            audit=AuditLog(audit_path, event_sink(factories, [exp]), clock),
            metrics=metrics,
        )
        metrics.load(store, exp.name)
        result = loop.run(max_trials=args.trials, apply=True if args.apply else None)
    finally:
        if args.metrics_file:
            metrics.write_textfile(args.metrics_file)
        store.close()
    return 0 if result.best is not None or result.stopped == "advisory" else 3


def add_tune_command(sub: Any) -> None:
    p = sub.add_parser("tune", help="run an experiment to its budget")
    p.add_argument("experiment", help="experiment YAML file")
    p.add_argument("--apply", action="store_true", help="change the system (default: advisory)")
    _state_arg(p)
    p.add_argument("--trials", type=int, default=None, help="override the trial budget")
    p.add_argument("--metrics-file", default=None, help="write metrics in textfile format here")
    p.set_defaults(func=cmd_tune)


def status_text(store: TrialStore, experiment: str | None = None) -> str:
    """Experiments and a trials table."""
    out: list[str] = []
    for row in store.experiments():
        name = row["name"]
        if experiment and name != experiment:
            continue
        trials = store.trials(name)
        inc = store.incumbent(name)
        best = "-" if inc is None else f"trial {inc[0].number} objective={inc[1]:.4g}"
        out.append(f"experiment {name}: {len(trials)} trials, best: {best}")
        out.append(f"  {'#':>4} {'kind':<9} {'state':<11} {'objective':>10}  params / reason")
        for t in trials:
            obj = "-" if t.objective is None else f"{t.objective:.4g}"
            params = " ".join(f"{k}={v}" for k, v in t.params.items())
            why = f"  ({t.reason})" if t.reason else ""
            out.append(f"  {t.number:>4} {t.kind:<9} {t.state:<11} {obj:>10}  {params}{why}")
    return "\n".join(out) if out else "no experiments"


def _existing_store(state: str) -> TrialStore | None:
    """The trial store under ``state``; None (with the error printed) when there is none."""
    db, _ = _paths(state)
    if not db.exists():
        print(f"error: no trial store in {state}", file=sys.stderr)
        return None
    return TrialStore(db)


def cmd_status(args: argparse.Namespace, factories: Factories) -> int:
    store = _existing_store(args.state)
    if store is None:
        return 1
    try:
        print(status_text(store, args.experiment))
    finally:
        store.close()
    return 0


def add_status_command(sub: Any) -> None:
    p = sub.add_parser("status", help="experiments and their trials")
    _state_arg(p)
    p.add_argument("--experiment", default=None)
    p.set_defaults(func=cmd_status)


def cmd_rollback(args: argparse.Namespace, factories: Factories) -> int:
    store = _existing_store(args.state)
    if store is None:
        return 1
    _, audit_path = _paths(args.state)
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
        clock = factories.clock()
        loop = TuningLoop(
            exp,
            factories.appliers(exp),
            factories.signals(exp),
            store,
            clock=clock,
            audit=AuditLog(audit_path, event_sink(factories, [exp]), clock),
        )
        restored = loop.rollback(args.to)
        print(f"rolled back {name} to {args.to}: {restored}")
    finally:
        store.close()
    return 0


def add_rollback_command(sub: Any) -> None:
    p = sub.add_parser("rollback", help="restore the snapshot taken before the first change")
    _state_arg(p)
    p.add_argument("--experiment", default=None)
    p.add_argument("--to", choices=("initial", "incumbent"), default="initial")
    p.set_defaults(func=cmd_rollback)


def cmd_report(args: argparse.Namespace, factories: Factories) -> int:
    from tuner.report import write_report

    store = _existing_store(args.state)
    if store is None:
        return 1
    try:
        for path in write_report(
            store, args.output or Path(args.state) / "report", args.experiment
        ):
            print(path)
    finally:
        store.close()
    return 0


def add_report_command(sub: Any) -> None:
    p = sub.add_parser("report", help="Markdown report with a convergence plot")
    _state_arg(p)
    p.add_argument("-o", "--output", default=None, help="output directory (default STATE/report)")
    p.add_argument("--experiment", default=None)
    p.set_defaults(func=cmd_report)


def cmd_controller(args: argparse.Namespace, factories: Factories) -> int:
    from tuner.controller import run_controller
    from tuner.controller_config import load_controller_config

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
    sub = parser.add_subparsers(dest="command", required=True)
    add_tune_command(sub)
    add_status_command(sub)
    add_rollback_command(sub)
    add_report_command(sub)
    add_controller_command(sub)
    _add_package_commands(sub)
    return parser


# Commands that act through the tuner's factories; the others take only their arguments.
FACTORY_COMMANDS = frozenset({"tune", "status", "rollback", "report", "controller"})


def _add_package_commands(sub: Any) -> None:
    """Commands that live with their packages (demo, simulation, generation)."""
    from tuneloop.generate.cli import add_generate_command
    from tuner.demo import add_demo_command
    from tuner.sim.cli import add_sim_commands

    add_demo_command(sub)
    add_sim_commands(sub)
    add_generate_command(sub)


def main(argv: Sequence[str] | None = None, factories: Factories | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command not in FACTORY_COMMANDS:
            return int(args.func(args))
        return int(args.func(args, factories or Factories()))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ApplierError, SignalError, StoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
