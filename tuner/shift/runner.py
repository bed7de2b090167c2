"""The shifter's loop: read each replica's latency, run the policy, apply weights, record why.

Every ``interval`` it reads each replica's P99 through the Signals seam (an error or no data is
``None``: the policy then holds that replica as it was), steps the policy, and applies the weights
that changed through the balancer's applier, then verifies them. Changes are rate-limited by
``min_apply_interval`` (nginx reloads on each change). Every shift, restore and blocked shift
goes to the audit log with the readings behind it (and so to Kubernetes Events where the audit
log has that sink), and the state file is rewritten atomically, so a restart resumes the shift
with the tuner's baselines. A failed apply keeps the previous weights in the state, is logged and
audited, and the loop goes on: the balancer still holds a weight it accepted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

from tuneloop.catalog import shift as catalog
from tuneloop.catalog.base import MetricSpec
from tuneloop.clock import Clock
from tuner.appliers.base import Applier, ApplierError
from tuner.audit import AuditLog
from tuner.shift import state as saved
from tuner.shift.config import ShiftConfig
from tuner.shift.policy import ReplicaState, ShiftAction, ShiftResult, initial_states, step
from tuner.signals.base import SignalError, Signals

log = logging.getLogger(__name__)


class ShiftMetrics:
    """The shifter's gauges and counters, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # The catalog names each counter's samples; ``_created`` series are not part of it
        # (as with the agent and node_exporter), so this process does not export them.
        disable_created_metrics()
        self.registry = registry or CollectorRegistry()
        r = self.registry

        def gauge(spec: MetricSpec) -> Gauge:
            return Gauge(spec.name, spec.help, list(spec.labels), registry=r)

        self.active = gauge(catalog.SHIFT_ACTIVE)
        self.weight = gauge(catalog.SHIFT_WEIGHT)
        self.baseline = gauge(catalog.SHIFT_BASELINE_WEIGHT)
        self.smoothed = gauge(catalog.SHIFT_P99_SMOOTHED)
        self.since = gauge(catalog.SHIFT_ACTIVE_SINCE)
        spec = catalog.SHIFT_EVENTS
        self.events = Counter(spec.name, spec.help, list(spec.labels), registry=r)

    def update(self, name: str, result: ShiftResult, since: Mapping[str, float]) -> None:
        for target, st in result.states.items():
            self.active.labels(name, target).set(1 if st.shifted else 0)
            self.weight.labels(name, target).set(st.weight)
            self.baseline.labels(name, target).set(st.baseline)
            if st.smoothed is not None:
                self.smoothed.labels(name, target).set(st.smoothed)
            if target in since:
                self.since.labels(name, target).set(since[target])
            else:
                with contextlib.suppress(KeyError):
                    self.since.remove(name, target)
        for ev in result.events:
            self.events.labels(name, ev.replica, ev.action.value).inc()


class Shifter:
    """One balancer's shifter."""

    def __init__(
        self,
        config: ShiftConfig,
        applier: Applier,
        signals: Signals,
        *,
        clock: Clock,
        audit: AuditLog,
        state_dir: Path,
        metrics: ShiftMetrics | None = None,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.applier = applier
        self.signals = signals
        self.clock = clock
        self.audit = audit
        self.metrics = metrics or ShiftMetrics()
        self.dry_run = dry_run
        self.path = saved.state_path(state_dir, config.name)
        self.targets = [r.target for r in config.replicas]
        self.states: dict[str, ReplicaState] = {}
        self.active_since: dict[str, float] = {}
        self.last_apply = float("-inf")

    def start(self) -> dict[str, ReplicaState]:
        """Resume a saved shift, or take the balancer's current weights as the baselines."""
        resumed = saved.load(self.path)
        if resumed is not None and set(resumed[0]) == set(self.targets):
            self.states = resumed[0]
            log.info("shift %s: resumed, baselines %s", self.config.name, self._baselines())
        else:
            current = self.applier.read(self.targets)
            self.states = initial_states({t: int(current[t]) for t in self.targets})
            log.info("shift %s: baselines %s", self.config.name, self._baselines())
        self._save()
        return self.states

    def _baselines(self) -> dict[str, int]:
        return {t: s.baseline for t, s in self.states.items()}

    def _readings(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for replica in self.config.replicas:
            try:
                out[replica.target] = self.signals.value(replica.latency, self.config.window_s)
            except SignalError as exc:
                log.warning("shift %s: %s: no reading: %s", self.config.name, replica.target, exc)
                out[replica.target] = None
        return out

    def tick(self) -> ShiftResult:
        """One interval: read, decide, apply, record."""
        if not self.states:
            self.start()
        now = self.clock.now()
        readings = self._readings()
        result = step(self.states, readings, self.config.settings, now)
        changed = {
            t: s.weight for t, s in result.states.items() if s.weight != self.states[t].weight
        }
        if changed and now - self.last_apply < self.config.min_apply_interval_s:
            log.info("shift %s: change held back by min_apply_interval", self.config.name)
            result = self._keep_weights(result)
            changed = {}
        if changed and not self.dry_run:
            try:
                self.applier.apply(changed)
                self.applier.verify(changed)
            except ApplierError as exc:
                log.error("shift %s: apply failed: %s", self.config.name, exc)
                self.audit.record("shift-failed", self.config.name, weights=changed, error=str(exc))
                result = self._keep_weights(result)
                changed = {}
            else:
                self.last_apply = now
        for ev in result.events:
            action = "shift-blocked" if ev.action is ShiftAction.BLOCKED else ev.action.value
            self.audit.record(
                action if not self.dry_run else f"{action}-advised",
                self.config.name,
                balancer=self.config.balancer,
                target=ev.replica,
                weight_from=ev.from_weight,
                weight_to=ev.to_weight,
                p99=ev.reading,
                p99_smoothed=ev.smoothed,
                threshold=ev.trip_s,
                reason=ev.reason,
                readings=readings,
            )
            log.info(
                "shift %s: %s %s %d -> %d (%s)",
                self.config.name,
                action,
                ev.replica,
                ev.from_weight,
                ev.to_weight,
                ev.reason,
            )
        for target, st in result.states.items():
            if st.shifted:
                self.active_since.setdefault(target, now)
            else:
                self.active_since.pop(target, None)
        self.states = result.states
        self._save()
        self.metrics.update(self.config.name, result, self.active_since)
        return result

    def _keep_weights(self, result: ShiftResult) -> ShiftResult:
        """The result with the weights (and their history) as they were: nothing was applied."""
        kept = {
            t: replace(
                s,
                weight=self.states[t].weight,
                last_direction=self.states[t].last_direction,
                reversals=self.states[t].reversals,
            )
            for t, s in result.states.items()
        }
        return ShiftResult(kept, [e for e in result.events if e.action is ShiftAction.BLOCKED])

    def _save(self) -> None:
        since = min(self.active_since.values()) if self.active_since else None
        saved.save(self.path, self.config.balancer, self.states, since)

    def run(self, duration_s: float | None = None, intervals: int | None = None) -> None:
        """Tick every interval until ``duration_s`` or ``intervals`` runs out (or forever)."""
        if not self.states:
            self.start()
        started = self.clock.now()
        done = 0
        while intervals is None or done < intervals:
            began = self.clock.now()
            if duration_s is not None and began - started >= duration_s:
                break
            self.tick()
            done += 1
            self.clock.sleep(max(0.0, self.config.interval_s - (self.clock.now() - began)))

    def restore(self) -> dict[str, int]:
        """Put every replica back on its baseline and clear the shift."""
        if not self.states:
            self.start()
        baselines = self._baselines()
        if not self.dry_run:
            self.applier.apply(baselines)
            self.applier.verify(baselines)
        self.audit.record("shift-restore-all", self.config.name, weights=baselines)
        self.states = initial_states(baselines)
        self.active_since.clear()
        self._save()
        return baselines
