"""The trial loop: resume, propose, guard, store, apply, verify, store, measure, tell, store.

Durability: a trial row and the pre-apply snapshot of every target it touches are committed
(``synchronous=FULL``) *before* anything is changed, and every later step is committed as it
happens. On start, :meth:`TuningLoop.resume` finds trials left in ``proposed``, ``applying``,
``applied`` or ``measuring`` and **rolls their appliers back to the recorded snapshot** (it does not
re-verify and finish them: the measurement window they were in cannot be reconstructed, and the
snapshot is a configuration known to have been in place). They end ``rolled_back`` with reason
``interrupted``. So whenever the tuner is killed, the system is afterwards at a recorded
configuration: the snapshot of the interrupted trial, or the params of the last finished one.

Safety: a constraint breach (during or at the end of the window) rolls back at once, to the
incumbent's params if there is one, else to the trial's snapshot; a failed apply or verify
restores the trial's snapshot. A trial
that beats the incumbent is promoted only after the incumbent is re-measured (kind
``incumbent``, outside the trial budget) and the candidate still wins; if that re-measurement is
invalid the promotion is deferred. The trial budget counts finished strategy trials, interrupted
ones included, across resumes; the wall-time budget counts from the start of this run.
Advisory mode (the default) changes nothing: it measures the configuration in place and prints
the best known or the next configuration to try.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuneloop.clock import Clock, RealClock
from tuner.appliers.base import Applier, ApplierError, KnobClass, Value
from tuner.audit import AuditLog
from tuner.guard import Guard
from tuner.measure import Measurer, MeasureResult
from tuner.metrics import TunerMetrics
from tuner.signals.base import SignalError, SignalRef, Signals
from tuner.space import Space, initial_points
from tuner.spec import Experiment
from tuner.store import Trial, TrialStore
from tuner.strategy.base import Params, Strategy, TrialResult, replay
from tuner.strategy.registry import build_strategy

_CLASS_ORDER = {KnobClass.HOT: 0, KnobClass.WARM: 1, KnobClass.COLD: 2}


@dataclass
class LoopResult:
    trials: int
    best: Trial | None
    best_value: float | None
    stopped: str
    applied_best: bool = False
    recommendation: Params | None = None


class Targets:
    """The experiment's knobs grouped by applier instance: read, snapshot, apply, restore."""

    def __init__(self, experiment: Experiment, appliers: Mapping[str, Applier]) -> None:
        self.exp = experiment
        self.appliers = appliers
        self.by_applier: dict[str, dict[str, str]] = {}  # applier -> target -> knob
        for k in experiment.knobs:
            if k.applier not in appliers:
                raise KeyError(f"no applier instance {k.applier!r} for knob {k.name!r}")
            self.by_applier.setdefault(k.applier, {})[k.target] = k.name

    def read(self) -> Params:
        out: Params = {}
        for name, targets in self.by_applier.items():
            values = self.appliers[name].read(list(targets))
            for target, knob in targets.items():
                out[knob] = values[target]
        return out

    def snapshot(self) -> dict[str, Any]:
        return {n: self.appliers[n].snapshot(list(t)) for n, t in self.by_applier.items()}

    def apply(self, params: Mapping[str, Value]) -> None:
        """Apply and verify every applier's share of ``params``."""
        for name, targets in self.by_applier.items():
            desired = {target: params[knob] for target, knob in targets.items()}
            self.appliers[name].apply(desired)
            self.appliers[name].verify(desired)

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        for name, snap in snapshot.items():
            self.appliers[name].rollback(snap)


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
        progress: Callable[[str], None] | None = None,
        strategy: Strategy | None = None,
    ) -> None:
        self.exp = experiment
        self.name = experiment.name
        self.targets = Targets(experiment, appliers)
        self.signals = signals
        self.store = store
        self.clock: Clock = clock or RealClock()
        self.audit = audit
        self.metrics = metrics or TunerMetrics()
        self.progress = progress or (lambda line: print(line, flush=True))
        self.space = Space(experiment.knobs)
        self.guard = Guard(experiment.safety, experiment.knobs)
        self.measurer = Measurer(
            signals,
            self.clock,
            experiment.measurement,
            experiment.objective,
            experiment.constraints,
        )
        self._strategy = strategy
        self.last_apply_at: float | None = None

    # bookkeeping ----------------------------------------------------------------------------
    def _audit(self, action: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.record(action, self.name, **fields)

    def _loss(self, objective: float) -> float:
        return self.exp.objective.to_loss(objective)

    def _incumbent(self) -> tuple[Trial, float] | None:
        return self.store.incumbent(self.name)

    def _history(self) -> list[tuple[Params, TrialResult]]:
        out: list[tuple[Params, TrialResult]] = []
        for t in self.store.trials(self.name):
            if t.kind not in ("trial", "incumbent", "baseline"):
                continue
            if t.state == "done" and t.objective is not None:
                out.append((t.params, TrialResult(self._loss(t.objective))))
            elif t.state == "infeasible":
                out.append((t.params, TrialResult(None, feasible=False)))
            elif t.state == "invalid":
                out.append((t.params, TrialResult(None, valid=False)))
        return out

    def _capacities(self) -> dict[str, float]:
        caps: dict[str, float] = {}
        for k in self.exp.knobs:
            if k.init is None or k.init.capacity is None:
                continue
            if isinstance(k.init.capacity, SignalRef):
                try:
                    value = self.signals.value(k.init.capacity, self.exp.measurement.window_s)
                except SignalError:
                    value = None
                if value is not None and value > 0:
                    caps[k.name] = value
            else:
                caps[k.name] = float(k.init.capacity)
        return caps

    # resume and rollback ----------------------------------------------------------------------
    def resume(self) -> list[Trial]:
        """Roll every in-flight trial back to its recorded snapshot; returns them."""
        self.store.ensure_experiment(self.name, self.exp.source)
        done = []
        for t in self.store.in_flight(self.name):
            self.targets.restore(t.snapshot)
            meas = dict(t.measurements, rollback_reason="interrupted")
            done.append(
                self.store.transition(
                    t.id,
                    "rolled_back",
                    measurements=meas,
                    reason=f"interrupted in state {t.state}; restored snapshot",
                )
            )
            self.metrics.rollback(self.name, "interrupted")
            self.metrics.trial(self.name, "rolled_back", self.clock.now())
            self._audit(
                "rollback", trial=t.number, reason="interrupted", state=t.state, restored=t.snapshot
            )
        return done

    def rollback(self, to: str = "initial") -> dict[str, Any]:
        """Restore the initial snapshot, or apply the incumbent's params; returns what was set."""
        self.resume()
        if to == "incumbent":
            inc = self._incumbent()
            if inc is None:
                raise ApplierError(f"experiment {self.name!r} has no incumbent yet")
            self.targets.apply(inc[0].params)
            restored: dict[str, Any] = dict(inc[0].params)
        else:
            restored = self.store.snapshots(self.name, "initial")
            if not restored:
                raise ApplierError(f"experiment {self.name!r} has no initial snapshot")
            self.targets.restore(restored)
        self._audit("rollback", reason=f"requested: to {to}", restored=restored)
        self.metrics.rollback(self.name, "manual")
        return restored

    # one trial ----------------------------------------------------------------------------------
    def _class_of_change(
        self, before: Mapping[str, Value], after: Mapping[str, Value]
    ) -> KnobClass | None:
        changed = [k.knob_class for k in self.exp.knobs if before.get(k.name) != after.get(k.name)]
        return max(changed, key=lambda c: _CLASS_ORDER[c]) if changed else None

    def _back_out(
        self, t: Trial, reason_kind: str, reason: str, state: str, meas: dict[str, Any]
    ) -> Trial:
        """Return to the incumbent (or the trial's snapshot) and record why."""
        inc = self._incumbent()
        try:
            if inc is not None and inc[0].id != t.id:
                self.targets.apply(inc[0].params)
                target: Any = inc[0].params
            else:
                self.targets.restore(t.snapshot)
                target = t.snapshot
        except ApplierError as exc:  # fall back to the snapshot taken just before this trial
            self._audit("rollback_failed", trial=t.number, error=str(exc))
            self.targets.restore(t.snapshot)
            target = t.snapshot
        meas = dict(meas, rollback_reason=reason_kind)
        t = self.store.transition(
            t.id,
            state,
            rolled_back=True,
            reason=reason,
            measurements=meas,
            valid=state != "rolled_back",
            feasible=False,
        )
        self.metrics.rollback(self.name, reason_kind)
        self._audit("rollback", trial=t.number, reason=reason, to=target)
        return t

    def run_trial(
        self, params: Params, kind: str = "trial", note: str = ""
    ) -> tuple[Trial, MeasureResult | None]:
        """Snapshot, record, apply, verify, measure one configuration; roll back on any failure."""
        before = self.targets.read()
        snap = self.targets.snapshot()
        t = self.store.propose(self.name, params, snap, kind=kind, reason=note or None)
        self._audit("propose", trial=t.number, kind=kind, params=params, previous=before)
        t = self.store.transition(t.id, "applying")
        try:
            self.targets.apply(params)
        except ApplierError as exc:
            self.targets.restore(snap)  # restore first: the row says "applying" until it is done
            self.store.transition(
                t.id,
                "rolled_back",
                reason=f"apply failed: {exc}",
                measurements={"rollback_reason": "apply_failed"},
            )
            self.metrics.rollback(self.name, "apply_failed")
            self.metrics.trial(self.name, "rolled_back", self.clock.now())
            self._audit("rollback", trial=t.number, reason=f"apply failed: {exc}", to=snap)
            return self.store.get(t.id), None
        self.last_apply_at = self.clock.now()
        t = self.store.transition(t.id, "applied")
        self.metrics.set_knobs(self.name, params)
        self._audit("apply", trial=t.number, params=params)
        t = self.store.transition(t.id, "measuring")
        res = self.measurer.measure(self._class_of_change(before, params))
        meas: dict[str, Any] = res.as_dict()
        if res.valid and not res.feasible:
            t = self._back_out(t, "breach", res.reason or "constraint breached", "infeasible", meas)
        elif not res.valid:
            t = self.store.transition(
                t.id, "invalid", valid=False, reason=res.reason, measurements=meas
            )
        else:
            assert res.objective is not None
            t = self.store.transition(
                t.id,
                "done",
                valid=True,
                feasible=True,
                objective=res.objective,
                loss=self._loss(res.objective),
                measurements=meas,
            )
        self.metrics.trial(self.name, t.state, self.clock.now())
        self._audit(
            "result", trial=t.number, outcome=t.state, objective=res.objective, reason=res.reason
        )
        return t, res

    # the loop -----------------------------------------------------------------------------------
    def _result_of(self, t: Trial) -> TrialResult | None:
        if t.state == "done" and t.objective is not None:
            return TrialResult(self._loss(t.objective))
        if t.state == "infeasible":
            return TrialResult(None, feasible=False)
        if t.state == "invalid":
            return TrialResult(None, valid=False)
        return None  # rolled back before any measurement: nothing learned

    def _maybe_promote(self, t: Trial, strategy: Strategy) -> None:
        if t.state != "done" or t.objective is None:
            return
        inc = self._incumbent()
        if inc is None:
            self.store.set_incumbent(self.name, t.id, t.objective)
            self.metrics.set_best(self.name, t.objective)
            self._audit("promote", trial=t.number, objective=t.objective)
            return
        inc_trial, inc_value = inc
        if self._loss(t.objective) >= self._loss(inc_value) or inc_trial.id == t.id:
            return
        if self.space.to_point(inc_trial.params) == self.space.to_point(t.params):
            self.store.set_incumbent(self.name, t.id, t.objective)
            return
        self._wait_to_apply()
        again, res = self.run_trial(
            dict(inc_trial.params),
            kind="incumbent",
            note=f"re-measure incumbent (trial {inc_trial.number})",
        )
        self.progress(self._line(again, f"#{again.number}", res))
        result = self._result_of(again)
        if result is not None:
            strategy.tell(again.params, result)
        if again.state in ("invalid", "rolled_back"):
            self._audit("promote_deferred", trial=t.number, reason="incumbent re-measure invalid")
            return
        still = again.state == "infeasible" or (
            again.objective is not None and self._loss(t.objective) < self._loss(again.objective)
        )
        if again.state == "done" and again.objective is not None and not still:
            self.store.set_incumbent(self.name, inc_trial.id, again.objective)
            self.metrics.set_best(self.name, again.objective)
            return
        if still:
            self.store.set_incumbent(self.name, t.id, t.objective)
            self.metrics.set_best(self.name, t.objective)
            self._audit(
                "promote",
                trial=t.number,
                objective=t.objective,
                replaced=inc_trial.number,
                incumbent_remeasured=again.objective,
            )

    def _wait_to_apply(self) -> None:
        wait = self.guard.wait_s(self.clock.now(), self.last_apply_at)
        if wait > 0:
            self.clock.sleep(wait)

    def _line(self, t: Trial, label: str, res: MeasureResult | None) -> str:
        """One progress line: position in the budget, params, objective, constraints, outcome."""
        params = " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        obj = "-" if t.objective is None else _fmt(t.objective)
        cons = ""
        if res is not None and res.constraints:
            cons = " " + " ".join(f"{k}={_fmt(v)}" for k, v in res.constraints.items())
        inc = self._incumbent()
        best = "-" if inc is None else f"{_fmt(inc[1])} (trial {inc[0].number})"
        tag = "" if t.kind == "trial" else f" [{t.kind}]"
        why = f" ({t.reason})" if t.reason and t.state != "done" else ""
        return f"trial {label}{tag} {params} | objective={obj}{cons} | {t.state}{why} | best={best}"

    def _strategy_for(self, current: Params) -> Strategy:
        if self._strategy is not None:
            strategy = self._strategy
        else:
            points = initial_points(self.exp.knobs, current, self._capacities())
            strategy = build_strategy(self.exp.strategy, self.space, points)
        replay(strategy, self._history())
        return strategy

    def run(self, max_trials: int | None = None, apply: bool | None = None) -> LoopResult:
        """Resume, then run to budget; ``apply`` overrides the experiment's mode."""
        apply_mode = (self.exp.mode == "apply") if apply is None else apply
        started = self.clock.now()
        interrupted = self.resume()
        for t in interrupted:
            self.progress(f"resumed: trial {t.number} was {t.reason}")
        for name, snap in self.targets.snapshot().items():
            self.store.save_snapshot(self.name, "initial", name, snap)
        current = self.targets.read()
        self.metrics.set_knobs(self.name, current)
        strategy = self._strategy_for(current)
        if not apply_mode:
            return self._advise(strategy, current)
        budget = max_trials if max_trials is not None else self.exp.budget.trials
        wall = self.exp.budget.wall_time_s
        stopped = "budget: trials"
        while True:
            done = [t for t in self.store.trials(self.name) if t.kind == "trial" and t.final]
            if len(done) >= budget:
                break
            if wall is not None and self.clock.now() - started >= wall:
                stopped = "budget: wall time"
                break
            inc = self._incumbent()
            proposal = strategy.ask()
            params, notes = self.guard.constrain(proposal, inc[0].params if inc else current)
            wait = self.guard.wait_s(self.clock.now(), self.last_apply_at)
            if wall is not None and self.clock.now() + wait - started >= wall:
                stopped = "budget: wall time (waiting for cooldown or a freeze window)"
                break
            if wait > 0:
                self.clock.sleep(wait)
            note = "guard: " + ", ".join(notes) if notes else ""
            t, res = self.run_trial(params, note=note)
            result = self._result_of(t)
            if result is not None:
                strategy.tell(t.params, result)
            self._maybe_promote(t, strategy)
            self.progress(self._line(t, f"{len(done) + 1}/{budget} #{t.number}", res))
        return self._finish(stopped, apply_mode)

    def _finish(self, stopped: str, apply_mode: bool) -> LoopResult:
        inc = self._incumbent()
        n = len([t for t in self.store.trials(self.name) if t.kind == "trial" and t.final])
        if inc is None:
            self.progress(f"{stopped}: no valid feasible trial; configuration left as measured")
            return LoopResult(n, None, None, stopped)
        best, value = inc
        applied = False
        if apply_mode and self.space.to_point(self.targets.read()) != self.space.to_point(
            best.params
        ):
            self._wait_to_apply()
            snap = self.targets.snapshot()
            t = self.store.propose(
                self.name, best.params, snap, kind="final", reason="apply the best"
            )
            self.store.transition(t.id, "applying")
            try:
                self.targets.apply(best.params)
            except ApplierError as exc:
                self.targets.restore(snap)
                self.store.transition(t.id, "rolled_back", reason=f"apply failed: {exc}")
                raise
            self.store.transition(t.id, "applied")
            self.store.transition(t.id, "done", objective=value, loss=self._loss(value))
            self.metrics.set_knobs(self.name, best.params)
            self._audit("apply_best", trial=best.number, params=best.params, objective=value)
            applied = True
        params = " ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
        verb = "applied" if apply_mode else "recommended"
        self.progress(
            f"{stopped}: best trial {best.number} objective={_fmt(value)} {verb}: {params}"
        )
        return LoopResult(n, best, value, stopped, applied, dict(best.params))

    def _advise(self, strategy: Strategy, current: Params) -> LoopResult:
        """Advisory mode: measure what is in place, say what to try or apply; change nothing."""
        t = self.store.propose(
            self.name,
            current,
            self.targets.snapshot(),
            kind="baseline",
            reason="advisory: current configuration",
        )
        t = self.store.transition(t.id, "measuring")
        res = self.measurer.measure(None)
        meas: dict[str, Any] = res.as_dict()
        if res.valid and res.feasible and res.objective is not None:
            t = self.store.transition(
                t.id,
                "done",
                valid=True,
                feasible=True,
                objective=res.objective,
                loss=self._loss(res.objective),
                measurements=meas,
            )
        else:
            t = self.store.transition(
                t.id,
                res.outcome,
                valid=res.valid,
                feasible=False,
                reason=res.reason,
                measurements=meas,
            )
        result = self._result_of(t)
        if result is not None:
            strategy.tell(t.params, result)
        self.progress(self._line(t, f"#{t.number}", res))
        inc = self._incumbent()
        if inc is not None and self.space.to_point(inc[0].params) != self.space.to_point(current):
            rec, why = dict(inc[0].params), f"best measured (trial {inc[0].number})"
        else:
            rec, _ = self.guard.constrain(strategy.ask(), inc[0].params if inc else current)
            why = "next configuration to try"
        a = self.store.propose(self.name, rec, {}, kind="advice", reason=why)
        self.store.transition(a.id, "advised")
        self._audit("advise", params=rec, reason=why)
        shown = " ".join(f"{k}={_fmt(v)}" for k, v in rec.items())
        self.progress(f"advisory: {why}: {shown} (run with --apply to change anything)")
        return LoopResult(
            0, inc[0] if inc else None, inc[1] if inc else None, "advisory", False, rec
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
