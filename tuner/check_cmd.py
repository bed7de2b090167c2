"""``tuneloop check EXPERIMENT.yaml [--output text|json]``: preflight an experiment, change nothing.

Exit codes: 0 when every signal answers and every knob reads, 1 when any check fails (or the
system cannot be reached at all), 2 when the experiment file itself is wrong (``error: <field>:
<reason>``). The appliers and signals come from the same factories as the other commands
(``factories.appliers(exp)``, ``factories.signals(exp)``), so tests and the simulated fleet pass
their own; the knob checks run in the preflight whatever the factory did.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, Protocol

from tuneloop.validation import ConfigError
from tuner.appliers.base import Applier, ApplierError
from tuner.preflight import run_preflight
from tuner.signals.base import SignalError, Signals
from tuner.spec import Experiment, load_experiment


class CheckFactories(Protocol):
    """What ``check`` needs of the command line's factories."""

    @property
    def appliers(self) -> Callable[[Experiment], dict[str, Applier]]: ...

    @property
    def signals(self) -> Callable[[Experiment], Signals]: ...


def cmd_check(args: argparse.Namespace, factories: CheckFactories) -> int:
    """Load, build, preflight; print the report as text or JSON."""
    try:
        experiment = load_experiment(args.experiment)
        appliers = factories.appliers(experiment)
        signals = factories.signals(experiment)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ApplierError, SignalError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    report = run_preflight(experiment, appliers, signals)
    if args.output == "json":
        print(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        print(report.text())
    return 0 if report.ok else 1


def add_check_command(sub: Any) -> None:
    """Register ``check`` on an argparse subparsers object."""
    parser = sub.add_parser(
        "check",
        help="preflight an experiment: every signal answers, every knob reads; changes nothing",
    )
    parser.add_argument("experiment", help="experiment YAML file")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.set_defaults(func=cmd_check)
