"""The tuning loop: resume, propose, guard, run a trial, tell, promote; to the budget.

Durability: a trial row and the pre-apply snapshot of every target it touches are committed
(``synchronous=FULL``) *before* anything is changed, and every later step is committed as it
happens (:mod:`tuner.trial_runner`, :mod:`tuner.recorder`). On start, :meth:`TuningLoop.resume`
finds trials left in ``proposed``, ``applying``, ``applied`` or ``measuring`` and **rolls their
appliers back to the recorded snapshot** (the measurement window they were in cannot be
reconstructed; the snapshot is a configuration known to have been in place). They end
``rolled_back`` with reason ``interrupted``. So whenever the tuner is killed, the system is
afterwards at a recorded configuration.

Safety: nothing unmeasured stays applied (see :mod:`tuner.trial_runner`). After
``max_signal_failures`` consecutive measurements that failed for a signal-side reason (an error,
no data, an unreadable SLO), the run stops: each of them was already rolled back, so the system
is on the incumbent or on the snapshot taken before the first change, and the result says so
(``signals_failed``; ``tuneloop tune`` exits non-zero). The limit is a module constant until the
experiment spec carries a ``safety.max_signal_failures`` field (read when present).

Promotion follows :func:`tuner.promotion.decide_promotion`, run by :mod:`tuner.promoter`: a
challenger that beats the incumbent is promoted only after the incumbent is re-measured (kind
``incumbent``, outside the trial budget) and the challenger still wins, by more than the
measurement noise or on the mean of a second window (kind ``challenger``); an invalid
re-measurement defers the promotion. At the end the strategy's robust pick (the GP's best
posterior mean over measured feasible configurations) is preferred to the incumbent when it is a
measured feasible trial, and the choice is applied and measured once more (kind ``final``) before
it stays; a pick that fails that measurement gives way to the incumbent, measured once more too.
A trial measured but not yet promoted when the tuner was killed is promoted on resume. The trial
budget counts finished strategy trials, interrupted ones included, across resumes; the
wall-time budget counts from the start of this run. Advisory mode (the default) changes nothing:
it measures the configuration in place and prints the best known or the next configuration to
try.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuneloop.clock import Clock, RealClock
from tuner.appliers.base import Applier, ApplierError
from tuner.audit import AuditLog
from tuner.guard import Guard
from tuner.history import history, result_of, start_strategy
from tuner.measure import Measurer, MeasureResult
from tuner.metrics import TunerMetrics
from tuner.preflight import PreflightError, PreflightReport, run_preflight
from tuner.progress import Progress, fmt
from tuner.promoter import Promoter
from tuner.recorder import TrialRecorder
from tuner.signals.base import Signals
from tuner.space import Space
from tuner.spec import Experiment
from tuner.store import Trial, TrialStore
from tuner.strategy.base import Params, Strategy, replay
from tuner.targets import Targets
from tuner.trial_runner import TrialRunner
from tuner.trial_state import TrialKind, TrialState

log = logging.getLogger(__name__)

MAX_SIGNAL_FAILURES = 3
STOP_SIGNALS = "signals failing"


@dataclass
class LoopResult:
    trials: int
    best: Trial | None
    best_value: float | None
    stopped: str
    applied_best: bool = False
    recommendation: Params | None = None
    signals_failed: bool = False


class TuningLoop:
    """Runs one experiment to its budget against appliers and a signals backend."""

    def __init__(
        self,
        experiment: Experiment,
        appliers: Mapping[str, Applier],
        signals: Signals,
        store: TrialStore,
        *,
        clock: Clock | None = None,
        audit: AuditLog | None = None,
        metrics: TunerMetrics | None = None,
        progress: Progress | Callable[[str], None] | None = None,
        strategy: Strategy | None = None,
        max_signal_failures: int | None = None,
        paused: Callable[[], str | None] | None = None,
    ) -> None:
        self.exp = experiment
        self.name = experiment.name
        self.targets = Targets(experiment, appliers)
        self.signals = signals
        self.store = store
        self.clock: Clock = clock or RealClock()
        self.metrics = metrics or TunerMetrics()
        self.progress = Progress.of(progress)
        self.space = Space(experiment.knobs)
        self.guard = Guard(experiment.safety, experiment.knobs)
        self.measurer = Measurer(
            signals,
            self.clock,
            experiment.measurement,
            experiment.objective,
            experiment.constraints,
        )
        self.recorder = TrialRecorder(
            experiment, store, self.metrics, audit, self.progress, self.clock
        )
        self.runner = TrialRunner(
            self.targets, self.measurer, self.recorder, self.progress, self.clock
        )
        self.promoter = Promoter(
            experiment, self.space, self.runner, self.recorder, self._wait_to_apply
        )
        self._strategy = strategy
        self._running_strategy: Strategy | None = None
        self.paused = paused
        configured = getattr(experiment.safety, "max_signal_failures", None)
        self.max_signal_failures = max_signal_failures or configured or MAX_SIGNAL_FAILURES

    # helpers ------------------------------------------------------------------------------------
    def _wait_to_apply(self) -> None:
        wait = self.guard.wait_s(self.clock.now(), self.runner.last_apply_at)
        if wait > 0:
            self.clock.sleep(wait)

    @property
    def last_apply_at(self) -> float | None:
        return self.runner.last_apply_at

    # resume and rollback ------------------------------------------------------------------------
    def resume(self) -> list[Trial]:
        """Roll every in-flight trial back to its recorded snapshot (returns them), and promote a
        measured trial that the stopped run did not get to promote."""
        self.store.ensure_experiment(self.name, self.exp.source)
        done = []
        for t in self.store.in_flight(self.name):
            self.targets.restore(t.snapshot)
            done.append(self.recorder.interrupted(t))
        self.promoter.recover()
        return done

    def rollback(self, to: str = "initial") -> dict[str, Any]:
        """Restore the initial snapshot, or apply the incumbent's params; returns what was set."""
        self.resume()
        if to == "incumbent":
            inc = self.recorder.incumbent()
            if inc is None:
                raise ApplierError(f"experiment {self.name!r} has no incumbent yet")
            self.targets.apply(inc[0].params)
            restored: dict[str, Any] = dict(inc[0].params)
        else:
            restored = self.store.snapshots(self.name, "initial")
            if not restored:
                raise ApplierError(f"experiment {self.name!r} has no initial snapshot")
            self.targets.restore(restored)
        self.recorder.manual_rollback(to, restored)
        return restored

    def preflight(self) -> PreflightReport:
        """Safety invariant 1: every signal answers and every knob reads before any change;
        :class:`PreflightError` (nothing changed) otherwise."""
        report = run_preflight(self.exp, self.targets.appliers, self.signals)
        for line in report.text().splitlines():
            log.info("%s", line, extra={"experiment": self.name})
        if not report.ok:
            raise PreflightError(report)
        return report

    # trials and promotion -----------------------------------------------------------------------
    def run_trial(
        self, params: Params, kind: str = TrialKind.TRIAL, note: str = "", label: str = "#{number}"
    ) -> tuple[Trial, MeasureResult | None]:
        """Snapshot, record, apply, verify, measure one configuration; roll back on any failure."""
        return self.runner.run(params, kind, note, label)

    def _tell(self, strategy: Strategy, t: Trial) -> None:
        result = result_of(t, self.exp.objective.to_loss)
        if result is not None:
            strategy.tell(t.params, result)

    # the loop -----------------------------------------------------------------------------------
    def run(self, max_trials: int | None = None, apply: bool | None = None) -> LoopResult:
        """Resume, then run to budget; ``apply`` overrides the experiment's mode."""
        apply_mode = (self.exp.mode == "apply") if apply is None else apply
        started = self.clock.now()
        self.resume()
        for name, snap in self.targets.snapshot().items():
            self.store.save_snapshot(self.name, "initial", name, snap)
        current = self.targets.read()
        self.metrics.set_knobs(self.name, current)
        strategy = self._strategy or start_strategy(self.exp, self.space, current, self.signals)
        replay(strategy, history(self.store, self.exp))
        self._running_strategy = strategy
        if not apply_mode:
            return self._advise(strategy, current)
        budget = max_trials if max_trials is not None else self.exp.budget.trials
        wall = self.exp.budget.wall_time_s
        stopped = "budget: trials"
        failures = 0
        while True:
            done = self.recorder.finished_trials()
            if done >= budget:
                break
            if wall is not None and self.clock.now() - started >= wall:
                stopped = "budget: wall time"
                break
            if self._hold_for_shift(started, wall):
                stopped = "budget: wall time (waiting for a traffic shift to end)"
                break
            inc = self.recorder.incumbent()
            proposal = strategy.ask()
            params, notes = self.guard.constrain(proposal, inc[0].params if inc else current)
            wait = self.guard.wait_s(self.clock.now(), self.runner.last_apply_at)
            if wall is not None and self.clock.now() + wait - started >= wall:
                stopped = "budget: wall time (waiting for cooldown or a freeze window)"
                break
            if wait > 0:
                log.info("%s: waiting %.0fs (cooldown or freeze window)", self.name, wait,
                         extra={"experiment": self.name})  # fmt: skip
                self.clock.sleep(wait)
            note = "guard: " + ", ".join(notes) if notes else ""
            label = f"{done + 1}/{budget} #{{number}}"
            t, res = self.run_trial(params, note=note, label=label)
            self._tell(strategy, t)
            remeasured = self.promoter.consider(t, lambda x: self._tell(strategy, x))
            for r in [res, *remeasured]:
                failures = failures + 1 if r is not None and r.signal_failure else 0
            if failures >= self.max_signal_failures:
                last = t.reason or "no reason recorded"
                stopped = f"{STOP_SIGNALS}: {failures} consecutive measurements failed ({last})"
                self.recorder.stopped(stopped, error=True)
                return self._finish(stopped, apply_mode, signals_failed=True)
        return self._finish(stopped, apply_mode)

    def _hold_for_shift(self, started: float, wall: float | None) -> bool:
        """Wait while a traffic shift is active on this experiment's balancer (no fighting over
        its weights); True when the wall budget ran out waiting."""
        said = False
        while self.paused is not None and (why := self.paused()) is not None:
            if not said:
                self.progress.line(f"{self.name}: no new trial while {why}")
                log.info("%s: holding: %s", self.name, why, extra={"experiment": self.name})
                said = True
            if wall is not None and self.clock.now() - started >= wall:
                return True
            self.clock.sleep(self.exp.measurement.check_interval_s)
        return False

    def _finish(self, stopped: str, apply_mode: bool, signals_failed: bool = False) -> LoopResult:
        inc = self.recorder.incumbent()
        n = self.recorder.finished_trials()
        if inc is None:
            where = "the initial configuration" if signals_failed else "configuration"
            self.progress.line(f"{stopped}: no valid feasible trial; {where} left as measured")
            return LoopResult(n, None, None, stopped, signals_failed=signals_failed)
        best, value = self._robust_choice(*inc)
        applied = False
        in_place = self.space.to_point(self.targets.read()) == self.space.to_point(best.params)
        # A robust pick other than the incumbent is measured again even when it is in place (the
        # last trial, say): only then does it become the incumbent, which is what stays applied.
        if apply_mode and not signals_failed and (not in_place or best.id != inc[0].id):
            try:
                value = self._apply_best(best, value)
            except ApplierError as exc:
                if best.id == inc[0].id:
                    raise
                # The pick did not hold up when measured again; the incumbent, which survived
                # its own re-measurements, is the next choice (and is measured again too).
                log.warning("%s: %s; applying the incumbent, trial %d", self.name, exc,
                            inc[0].number, extra={"experiment": self.name})  # fmt: skip
                best, value = inc
                value = self._apply_best(best, value)
            applied = True
        params = " ".join(f"{k}={fmt(v)}" for k, v in best.params.items())
        verb = "applied" if apply_mode and (applied or in_place) else "recommended"
        self.progress.line(
            f"{stopped}: best trial {best.number} objective={fmt(value)} {verb}: {params}"
        )
        return LoopResult(
            n, best, value, stopped, applied, dict(best.params), signals_failed=signals_failed
        )

    def _robust_choice(self, incumbent: Trial, value: float) -> tuple[Trial, float]:
        """The configuration to leave applied: the strategy's robust pick (for the GP, the measured
        feasible configuration with the best posterior mean) when it is a measured, feasible
        trial other than the incumbent, else the incumbent. Either is measured again before it
        stays (:meth:`_apply_best`), so one lucky window does not decide; a pick that fails its
        final measurement gives way to the incumbent (:meth:`_finish`)."""
        strategy = self._running_strategy
        pick = strategy.recommend() if strategy is not None else None
        if pick is None or self.space.to_point(pick) == self.space.to_point(incumbent.params):
            return incumbent, value
        point = self.space.to_point(pick)
        for t in reversed(self.store.trials(self.name)):
            if (
                t.state == TrialState.DONE
                and t.feasible
                and t.objective is not None
                and self.space.to_point(t.params) == point
            ):
                log.info("%s: robust pick trial %d over the incumbent, trial %d", self.name,
                         t.number, incumbent.number, extra={"experiment": self.name})  # fmt: skip
                return t, t.objective
        return incumbent, value

    def _apply_best(self, best: Trial, value: float) -> float:
        """Apply the incumbent at the end and measure it again before it stays (kind ``final``).

        Its fresh value becomes the incumbent's. A failed apply, a breach or an invalid
        measurement backs out to the configuration in place before (a measured one), is
        recorded, and raises ApplierError: the best could not be put in place."""
        self._wait_to_apply()
        note = f"apply the best (trial {best.number}), measured"
        t, _ = self.run_trial(dict(best.params), kind=TrialKind.FINAL, note=note)
        if t.state != TrialState.DONE or t.objective is None:
            raise ApplierError(
                f"experiment {self.name!r}: the best (trial {best.number}) was not kept: "
                f"{t.reason or t.state}"
            )
        self.recorder.final_applied(best, t.objective, t)
        return t.objective

    def _advise(self, strategy: Strategy, current: Params) -> LoopResult:
        """Advisory mode: measure what is in place, say what to try or apply; change nothing."""
        t = self.recorder.proposed(
            current, self.targets.snapshot(), TrialKind.BASELINE,
            "advisory: current configuration", current,
        )  # fmt: skip
        t = self.recorder.measuring(t)
        self.measurer.on_tick = lambda tick: self.progress.tick(f"#{t.number}", tick)
        try:
            res = self.measurer.measure(None)
        finally:
            self.measurer.on_tick = None
        t = self.recorder.measured(t, res, f"#{t.number}")
        self._tell(strategy, t)
        inc = self.recorder.incumbent()
        if inc is not None and self.space.to_point(inc[0].params) != self.space.to_point(current):
            rec, why = dict(inc[0].params), f"best measured (trial {inc[0].number})"
        else:
            rec, _ = self.guard.constrain(strategy.ask(), inc[0].params if inc else current)
            why = "next configuration to try"
        self.recorder.advised(rec, why)
        return LoopResult(
            0, inc[0] if inc else None, inc[1] if inc else None, "advisory", False, rec
        )
