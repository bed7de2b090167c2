"""The controller's process: the tuning controller and its traffic shifters while it leads.

Decisions:
- One process holds the Lease (``lease:``) or runs alone; while it leads, the tuning controller
  runs on one thread and each ``shifts:`` entry's shifter on its own
  (:mod:`tuner.shift.service`). They share the audit log (so Kubernetes Events), the clock and
  one ``/metrics`` registry; the shifters keep their state beside the trial store, where the
  tuning loops' shift pause reads it, so a round starts no trial on a balancer a shift holds.
- SIGTERM, SIGINT or losing the Lease stop the shifters, which restore the baselines they
  changed, before the process exits. A round in flight is not waited for: the next leader's
  loop resumes (rolls back) its trial, as before.
- Two shifters on one balancer, or with one name (their state file), would fight: refused.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from tuneloop.clock import Clock
from tuneloop.validation import fail, join
from tuner.audit import AuditLog
from tuner.controller import Controller
from tuner.controller_config import ControllerConfig, LeaseSettings
from tuner.metrics import TunerMetrics
from tuner.shift.config import load_shift_config
from tuner.shift.runner import Shifter, ShiftMetrics
from tuner.shift.service import STOP_SLICE_S, ShiftService
from tuner.spec import load_experiment
from tuner.store import TrialStore
from tuner.wiring import Factories, build_loop, state_paths
from tuner.writer_lock import HeartbeatClock

log = logging.getLogger(__name__)

EXIT_LEADERSHIP_LOST = 1
# (lease, on_start, on_stop) -> an object whose run() stands for election (blocking)
Election = Callable[[LeaseSettings, Callable[[], None], Callable[[], None]], Any]


def build_shifters(
    config: ControllerConfig,
    factories: Factories,
    clock: Clock,
    audit: AuditLog,
    registry: CollectorRegistry,
) -> list[Shifter]:
    """A shifter for each of ``shifts:``, keeping its state beside the trial store (where the
    tuning loops' shift pause reads it) and its metrics in the controller's registry."""
    metrics = ShiftMetrics(registry) if config.shifts else None
    shifters: list[Shifter] = []
    names: dict[str, int] = {}
    balancers: dict[str, int] = {}
    for i, path in enumerate(config.shifts):
        shift = load_shift_config(path)
        for seen, key, what in (
            (names, shift.name, "name"),
            (balancers, shift.balancer, "balancer"),
        ):
            if key in seen:
                fail(join("shifts", i), f"{what} {key!r} is also shifts[{seen[key]}]'s")
            seen[key] = i
        shifters.append(
            Shifter(
                shift,
                factories.shift_applier(shift),
                factories.shift_signals(shift),
                clock=clock,
                audit=audit,
                state_dir=config.state,
                metrics=metrics,
            )
        )
    return shifters


@dataclass
class ControllerRun:
    """What one controller process runs: the tuning controller, its shifters, its /metrics."""

    controller: Controller
    shifts: ShiftService
    registry: CollectorRegistry


def build_controller(config: ControllerConfig, factories: Factories) -> ControllerRun:
    """The controller and its shifters, sharing one store, audit log, clock and registry."""
    base_clock = factories.clock()
    clock = HeartbeatClock(base_clock)
    store_path, audit_path = state_paths(config.state)
    store = TrialStore(store_path, clock)
    audit = AuditLog(audit_path, factories.event_sink, clock)
    metrics = TunerMetrics()
    registry = metrics.registry()
    loops = [
        build_loop(
            load_experiment(path),
            factories,
            config.state,
            store=store,
            clock=clock,
            metrics=metrics,
            audit=audit,
        )
        for path in config.experiments
    ]
    # The shifters' threads wait on the plain clock: the heartbeat touches the store's
    # connection, which belongs to the tuning thread.
    shifters = build_shifters(config, factories, base_clock, audit, registry)
    holder = config.lease.identity if config.lease is not None else None
    return ControllerRun(
        Controller(config, loops, clock, holder=holder), ShiftService(shifters), registry
    )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (in the main thread; elsewhere nothing is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_controller(
    config: ControllerConfig,
    factories: Factories,
    *,
    stop: threading.Event | None = None,
    election: Election | None = None,
) -> int:
    """Serve metrics; tune and shift traffic while leader (or always, without ``lease:``).

    Runs until ``stop`` is set (SIGTERM or SIGINT set it) or the Lease is lost; then the
    shifters stop and restore the baselines they changed. Returns 0 when stopped; losing the
    Lease returns :data:`EXIT_LEADERSHIP_LOST` so the Pod restarts and stands for election
    again. ``election`` builds the candidate (default: the kubernetes client's, on the Lease)."""
    run = build_controller(config, factories)
    if config.metrics_port:
        start_http_server(config.metrics_port, addr=config.metrics_address, registry=run.registry)
    stop = stop or threading.Event()
    lost = threading.Event()
    failed: list[BaseException] = []

    def lead() -> None:
        run.shifts.start()
        run.controller.run(stop)

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                target()
            except BaseException as exc:
                failed.append(exc)
                raise
            finally:
                stop.set()  # the work ended: stop the shifters too

        return body

    with _stop_on_signals(stop):
        if config.lease is None:
            worker = threading.Thread(target=guarded(lead), name="controller", daemon=True)
        else:
            if election is None:
                from tuner.kube.election import lease_election

                election = lease_election

            def on_stop() -> None:
                lost.set()
                stop.set()

            candidate = election(config.lease, lead, on_stop)
            worker = threading.Thread(target=guarded(candidate.run), name="election", daemon=True)
        worker.start()
        while not stop.wait(STOP_SLICE_S):  # a timed wait: a signal handler's set() is seen
            pass
        restored = run.shifts.stop()
    if restored:
        log.info("shifts stopped; baselines restored: %s", restored)
    if lost.is_set():
        log.error("leadership lost: exiting so another replica can lead")
        return EXIT_LEADERSHIP_LOST
    if failed:
        raise failed[0]
    return 0
