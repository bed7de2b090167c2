"""Continuous re-tuning: watch each experiment's objective and start a tuning round when needed.

Decision rule, per experiment, every ``interval``:

* read the objective over the measurement window; no data means no decision (never "fine");
* smooth its loss (the value minimised) with an EMA (``ema_alpha``);
* never tuned (no incumbent) -> start a round;
* after a round, or on start, the first ``baseline_samples`` smoothed values set the *reference*;
* hysteresis: a round starts when the smoothed loss is worse than the reference by more than
  ``hysteresis.start`` (relative) and at least ``hysteresis.min_interval`` has passed since the last
  round; it does not start again until the loss has come back within ``hysteresis.clear`` (or a
  round has re-established the reference). So noise and a slow drift do not make it oscillate.

Only the leader tunes: with ``lease:`` set, the kubernetes client's own ``LeaderElection`` holds
a ``coordination.k8s.io`` Lease; on losing it the controller stops and the process exits, and the
next leader's tuning loop resumes (rolls back) any trial left in flight. The process around it
(the Lease, the traffic shifters of ``shifts:``, ``/metrics``) is :mod:`tuner.controller_run`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum

from tuneloop.clock import Clock
from tuner.controller_config import ControllerConfig
from tuner.loop import TuningLoop
from tuner.signals.base import SignalError
from tuner.spec import Experiment
from tuner.writer_lock import WRITER_TTL_S, HeartbeatClock

log = logging.getLogger(__name__)


class DecisionKind(StrEnum):
    """What one observation of an experiment led to."""

    ROUND = "round"  # a tuning round starts
    NO_DECISION = "no decision"  # no data or a failing signal: nothing is concluded
    BASELINING = "baselining"
    BASELINED = "baselined"
    STEADY = "steady"
    FAILED = "failed"  # the observation or the round raised; logged, other experiments go on


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    detail: str = ""

    @property
    def starts_round(self) -> bool:
        return self.kind is DecisionKind.ROUND

    def __str__(self) -> str:
        if not self.detail:
            return str(self.kind)
        sep = " " if self.kind is DecisionKind.STEADY else ": "
        return f"{self.kind}{sep}{self.detail}"


class Ema:
    """Exponential moving average; the first sample seeds it."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.value: float | None = None
        self.count = 0

    def update(self, x: float) -> float:
        self.value = x if self.value is None else self.alpha * x + (1 - self.alpha) * self.value
        self.count += 1
        return self.value

    def reset(self) -> None:
        self.value, self.count = None, 0


class Hysteresis:
    """Start above ``start``, re-arm below ``clear``, and never twice within ``min_interval_s``."""

    def __init__(self, start: float, clear: float, min_interval_s: float) -> None:
        self.start, self.clear, self.min_interval_s = start, clear, min_interval_s
        self.armed = True
        self.last_round_at: float | None = None

    def should_start(self, degradation: float, now: float) -> bool:
        if not self.armed:
            if degradation <= self.clear:
                self.armed = True
            return False
        if degradation <= self.start:
            return False
        if self.last_round_at is not None and now - self.last_round_at < self.min_interval_s:
            return False
        self.armed = False
        self.last_round_at = now
        return True


@dataclass
class Watch:
    """The controller's state for one experiment."""

    exp: Experiment
    loop: TuningLoop
    ema: Ema
    hysteresis: Hysteresis
    reference: float | None = None
    last: Decision | None = None


class Controller:
    """Decides per experiment when to run a tuning round, and runs it."""

    def __init__(
        self,
        config: ControllerConfig,
        loops: list[TuningLoop],
        clock: Clock,
        holder: str | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.holder = holder  # the writer lock's holder: the Lease identity in a cluster
        self.watches = [
            Watch(
                lp.exp,
                lp,
                Ema(config.ema_alpha),
                Hysteresis(config.start_ratio, config.clear_ratio, config.min_interval_s),
            )
            for lp in loops
        ]

    def decide(self, w: Watch) -> Decision:
        """One observation of an experiment's objective, and what it leads to."""
        try:
            value = w.loop.signals.value(w.exp.objective.ref, w.exp.measurement.window_s)
        except SignalError as exc:
            return Decision(DecisionKind.NO_DECISION, str(exc))
        if value is None:
            return Decision(DecisionKind.NO_DECISION, "no data")
        ema = w.ema.update(w.exp.objective.to_loss(value))
        if w.loop.store.incumbent(w.exp.name) is None:
            return Decision(DecisionKind.ROUND, "never tuned")
        if w.reference is None:
            if w.ema.count >= self.config.baseline_samples:
                w.reference = ema
                w.hysteresis.armed = True
                return Decision(DecisionKind.BASELINED)
            return Decision(DecisionKind.BASELINING)
        degradation = (ema - w.reference) / max(abs(w.reference), 1e-12)
        if w.hysteresis.should_start(degradation, self.clock.now()):
            return Decision(DecisionKind.ROUND, f"objective {degradation:+.1%} vs reference")
        return Decision(DecisionKind.STEADY, f"({degradation:+.1%})")

    def _round(self, w: Watch) -> None:
        """One tuning round: the experiment's trial budget on top of what is done."""
        lock = w.loop.store.acquire_writer(w.exp.name, holder=self.holder, ttl_s=WRITER_TTL_S)
        if isinstance(self.clock, HeartbeatClock):
            self.clock.hold(lock)
        try:
            done = w.loop.recorder.finished_trials()
            w.loop.preflight()  # a failure is this experiment's failed decision; nothing changed
            result = w.loop.run(max_trials=done + w.exp.budget.trials)
        finally:
            if isinstance(self.clock, HeartbeatClock):
                self.clock.drop(lock)
            lock.release()
        if result.signals_failed:
            log.error("%s: round stopped: %s", w.exp.name, result.stopped,
                      extra={"experiment": w.exp.name})  # fmt: skip
        w.ema.reset()
        w.reference = None
        w.hysteresis.last_round_at = self.clock.now()

    def tick(self) -> dict[str, Decision]:
        """Observe every experiment once; run a round where the decision says so.

        An exception in one experiment (its signals, its appliers, its round) is logged and
        recorded as a ``failed`` decision; the other experiments and leadership go on."""
        out: dict[str, Decision] = {}
        for w in self.watches:
            try:
                decision = self.decide(w)
                if decision.starts_round:
                    log.info("%s: %s", w.exp.name, decision, extra={"experiment": w.exp.name})
                    self._round(w)
            except Exception as exc:
                log.exception("%s: %s", w.exp.name, exc, extra={"experiment": w.exp.name})
                decision = Decision(DecisionKind.FAILED, f"{type(exc).__name__}: {exc}")
            w.last = decision
            out[w.exp.name] = decision
        return out

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.tick()
            stop.wait(self.config.interval_s)
