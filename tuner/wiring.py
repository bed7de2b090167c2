"""How the tuner is put together: :class:`Factories` and the one :func:`build_loop`.

Every entry point (``tune``, ``rollback``, the controller, the demo, the lab benchmarks) builds
its tuning loop here, so the store, audit log, metrics and event sink are wired the same way
everywhere. Appliers, signals and the clock come from :class:`Factories`; the defaults build the
appliers registry's instances, Prometheus and wall time, and callers (tests, the simulated
fleet, the lab) pass their own. This module imports no command line code, so commands, the
controller and the demo can all import it without an import circle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneloop.clock import Clock, RealClock
from tuner.appliers.base import Applier
from tuner.audit import AuditLog
from tuner.loop import TuningLoop
from tuner.metrics import TunerMetrics
from tuner.progress import Progress
from tuner.shift.state import shift_pause
from tuner.signals.base import Signals
from tuner.spec import Experiment
from tuner.store import TrialStore
from tuner.strategy.base import Strategy

if TYPE_CHECKING:
    from tuner.kube.client import KubeClient
    from tuner.shift.config import ShiftConfig

log = logging.getLogger(__name__)

STORE_FILE = "trials.db"
AUDIT_FILE = "audit.jsonl"


def registry_appliers(exp: Experiment) -> dict[str, Applier]:
    """Applier instances from the appliers registry, each knob's target and bounds checked
    against what its system accepts; errors name ``appliers.<name>`` or ``knobs[i]``."""
    from tuner.appliers.registry import build_appliers

    return build_appliers(exp)


def balancers(exp: Experiment) -> set[str]:
    """The balancers this experiment sets weights on (a traffic shifter may hold them)."""
    from tuner.shift.state import balancer_identity

    return {
        balancer_identity(spec.kind, spec.options)
        for spec in exp.appliers.values()
        if spec.kind in ("haproxy", "nginx")
    }


def prometheus_signals(exp: Experiment) -> Signals:
    """A Prometheus backend from the experiment's ``signals:`` section (URL, scope, source)."""
    from tuner.signals.prometheus import PrometheusSignals

    return PrometheusSignals.from_settings(exp.signals)


def registry_shift_applier(config: ShiftConfig) -> Applier:
    """The weight applier a shifter's ``balancer:`` names, from the appliers registry."""
    from tuner.appliers.registry import build_applier

    return build_applier(config.balancer_kind, config.balancer_options, "balancer")


def prometheus_shift_signals(config: ShiftConfig) -> Signals:
    """The Prometheus a shifter reads its replicas' latency from."""
    from tuner.signals.prometheus import PrometheusSignals

    return PrometheusSignals(config.prometheus)


def cluster_client() -> KubeClient:
    """The in-cluster client (else the kubeconfig's) for Kubernetes Events."""
    from tuner.kube.client import KubeClient

    return KubeClient.connect()


@dataclass
class Factories:
    """How an entry point builds what an experiment needs.

    ``kube_events`` None means "never send Kubernetes Events" (the demo, the lab benchmarks).
    A traffic shifter's balancer and latency readings come from ``shift_applier`` and
    ``shift_signals``.
    """

    appliers: Callable[[Experiment], dict[str, Applier]] = registry_appliers
    signals: Callable[[Experiment], Signals] = prometheus_signals
    shift_applier: Callable[[ShiftConfig], Applier] = registry_shift_applier
    shift_signals: Callable[[ShiftConfig], Signals] = prometheus_shift_signals
    clock: Callable[[], Clock] = RealClock
    event_sink: Callable[[dict[str, Any]], None] | None = None
    kube_events: Callable[[], KubeClient] | None = cluster_client
    extra: dict[str, Any] = field(default_factory=dict)


def event_sink(
    factories: Factories, experiments: Sequence[Experiment]
) -> Callable[[dict[str, Any]], None] | None:
    """The factories' sink, else Kubernetes Events when in a cluster (``KUBERNETES_SERVICE_HOST``
    set, or an experiment with a k8s-* applier); None when there is no API server to reach."""
    if factories.event_sink is not None:
        return factories.event_sink
    if factories.kube_events is None:
        return None
    from tuner.kube.events import KubeEventSink, in_cluster

    if not in_cluster(experiments):
        return None
    try:
        client = factories.kube_events()
    except Exception as exc:  # the config loaders raise several types
        log.warning("no Kubernetes Events: %s", exc)
        return None
    return KubeEventSink(client, experiments)


def state_paths(state_dir: str | Path) -> tuple[Path, Path]:
    """The trial store and the audit log under a state directory."""
    root = Path(state_dir)
    return root / STORE_FILE, root / AUDIT_FILE


def build_loop(
    experiment: Experiment,
    factories: Factories,
    state_dir: str | Path,
    *,
    store: TrialStore | None = None,
    clock: Clock | None = None,
    metrics: TunerMetrics | None = None,
    audit: AuditLog | None = None,
    progress: Progress | Callable[[str], None] | None = None,
    strategy: Strategy | None = None,
    appliers: Mapping[str, Applier] | None = None,
) -> TuningLoop:
    """A tuning loop for ``experiment`` with its store and audit log under ``state_dir``.

    Shared pieces (one store, clock, metrics and audit log for several experiments, as the
    controller has) are passed in; the rest is built. Metric counters start from the store's
    totals for the experiment. The caller closes ``loop.store``.
    """
    if appliers is None:  # before the store: a bad spec opens nothing
        appliers = factories.appliers(experiment)
    signals = factories.signals(experiment)
    clock = clock or factories.clock()
    db_path, audit_path = state_paths(state_dir)
    opened = store is None
    store = store or TrialStore(db_path, clock)
    try:
        if metrics is None:
            metrics = TunerMetrics()
        metrics.load(store, experiment.name)
        if audit is None:
            audit = AuditLog(audit_path, event_sink(factories, [experiment]), clock)
        held = balancers(experiment)
        return TuningLoop(
            experiment,
            appliers,
            signals,
            store,
            clock=clock,
            audit=audit,
            metrics=metrics,
            progress=progress,
            strategy=strategy,
            paused=shift_pause(Path(state_dir), held) if held else None,
        )
    except BaseException:
        if opened:
            store.close()
        raise
