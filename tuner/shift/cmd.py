"""``tuneloop shift CONFIG``: keep traffic off replicas whose latency degrades, until stopped.

The balancer's applier and the latency readings come from the tuner's :class:`Factories`; in a
cluster every shift and restore also becomes a Kubernetes Event, as ``tune`` and the controller
do (:func:`tuner.wiring.event_sink`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneloop.clock import RealClock
from tuner.audit import AuditLog
from tuner.shift.config import load_shift_config
from tuner.shift.runner import Shifter, ShiftMetrics

if TYPE_CHECKING:
    from tuner.wiring import Factories

log = logging.getLogger(__name__)


class _StoppableClock(RealClock):
    """Wall time whose sleep ends early when the process is asked to stop."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop.wait(seconds)


def cmd_shift(args: argparse.Namespace, factories: Factories) -> int:
    from prometheus_client import start_http_server

    from tuner.wiring import event_sink

    config = load_shift_config(args.config)
    applier = factories.shift_applier(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    clock = _StoppableClock(stop)
    state = Path(args.state)
    metrics = ShiftMetrics()
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, registry=metrics.registry)
    shifter = Shifter(
        config,
        applier,
        factories.shift_signals(config),
        clock=clock,
        audit=AuditLog(state / "audit.jsonl", event_sink(factories, []), clock),
        state_dir=state,
        metrics=metrics,
        dry_run=args.dry_run,
    )
    if args.restore:
        weights = shifter.restore()
        print(f"restored baselines: {weights}")
        return 0
    shifter.start()
    started = clock.now()
    while not stop.is_set():
        if args.duration is not None and clock.now() - started >= args.duration:
            break
        shifter.run(intervals=1)
    log.info(
        "shift %s: stopped; weights %s",
        config.name,
        {t: s.weight for t, s in shifter.states.items()},
    )
    return 0


def add_shift_command(subparsers: Any) -> None:
    """Register ``shift`` under a parent's subparsers."""
    p = subparsers.add_parser(
        "shift",
        help="move traffic off replicas whose P99 degrades (and back)",
        description=(
            "Every interval, read each replica's P99, smooth it, and lower the balancer weight of "
            "a replica over its threshold in bounded steps; restore it after it has stayed under "
            "the clear threshold for the hold time. The tuner starts no trial on a balancer while "
            "a shift is active there."
        ),
    )
    p.add_argument("config", help="the shifter's YAML file")
    p.add_argument("--state", default="./tuneloop-state", help="state directory (shared with tune)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--dry-run", action="store_true", help="decide and record, change nothing")
    p.add_argument("--restore", action="store_true", help="put every baseline back and exit")
    p.add_argument("--metrics-port", type=int, default=None, help="serve /metrics on this port")
    p.set_defaults(func=cmd_shift)
