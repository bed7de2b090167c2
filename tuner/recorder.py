"""The trial recorder: every trial event goes to the store, metrics, audit log, log and progress.

Decision: one object records each event (proposed, applying, applied, measuring, measured, rolled
back, apply failed, promoted, kept, advised) in all five places in the same call, so the record,
the counters, the audit log and what the operator reads cannot drift apart. The loop decides;
the recorder only writes down. Store values stay plain strings (``TrialState``/``TrialKind``
are ``StrEnum``s). Trial outcomes count in ``tuneloop_tuner_trials_total`` for strategy trials
and incumbent re-measurements; every rollback, the final apply's included, counts in
``tuneloop_tuner_rollbacks_total`` with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tuneloop.clock import Clock
from tuner.audit import AuditLog
from tuner.measure import MeasureResult
from tuner.metrics import COUNTED_KINDS, TunerMetrics
from tuner.progress import Progress, fmt
from tuner.spec import Experiment
from tuner.store import Trial, TrialStore
from tuner.strategy.base import Params
from tuner.trial_state import TrialKind, TrialState

log = logging.getLogger(__name__)


class RollbackReason:
    """Values of the ``reason`` label of ``tuneloop_tuner_rollbacks_total``."""

    BREACH = "breach"
    SIGNAL_FAILURE = "signal_failure"
    INVALID = "invalid"
    APPLY_FAILED = "apply_failed"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    MANUAL = "manual"


class TrialRecorder:
    """Writes one experiment's trial events to store, metrics, audit log, log and progress."""

    def __init__(
        self,
        experiment: Experiment,
        store: TrialStore,
        metrics: TunerMetrics,
        audit: AuditLog | None,
        progress: Progress,
        clock: Clock,
    ) -> None:
        self.exp = experiment
        self.name = experiment.name
        self.store = store
        self.metrics = metrics
        self.audit = audit
        self.progress = progress
        self.clock = clock

    # helpers ------------------------------------------------------------------------------------
    def _audit(self, action: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.record(action, self.name, **fields)

    def _log(self, level: int, event: str, trial: Trial | None, msg: str, *args: Any) -> None:
        extra: dict[str, Any] = {"experiment": self.name, "event": event}
        if trial is not None:
            extra["trial"] = trial.number
        log.log(level, f"{self.name}: {msg}", *args, extra=extra)

    def _counted(self, t: Trial) -> None:
        if t.kind in COUNTED_KINDS:
            self.metrics.trial(self.name, t.state, self.clock.now())

    def loss(self, objective: float) -> float:
        return self.exp.objective.to_loss(objective)

    def finished_trials(self) -> int:
        """Strategy trials that reached a final state (the trial budget counts these)."""
        return sum(1 for t in self.store.trials(self.name) if t.kind == TrialKind.TRIAL and t.final)

    def incumbent(self) -> tuple[Trial, float] | None:
        return self.store.incumbent(self.name)

    # trial events -------------------------------------------------------------------------------
    def proposed(
        self, params: Params, snapshot: Mapping[str, Any], kind: str, note: str, previous: Params
    ) -> Trial:
        t = self.store.propose(self.name, params, snapshot, kind=kind, reason=note or None)
        self._audit("propose", trial=t.number, kind=kind, params=params, previous=previous)
        self._log(logging.INFO, "proposed", t, "trial %d (%s) proposed: %s", t.number, kind, params)
        return t

    def applying(self, t: Trial) -> Trial:
        return self.store.transition(t.id, TrialState.APPLYING)

    def applied(self, t: Trial) -> Trial:
        t = self.store.transition(t.id, TrialState.APPLIED)
        self.metrics.set_knobs(self.name, t.params)
        self._audit("apply", trial=t.number, params=t.params)
        self._log(logging.INFO, "applied", t, "trial %d applied: %s", t.number, t.params)
        return t

    def measuring(self, t: Trial) -> Trial:
        return self.store.transition(t.id, TrialState.MEASURING)

    def measured(self, t: Trial, res: MeasureResult, label: str) -> Trial:
        """A measurement that leaves the configuration in place (done; advisory results)."""
        meas: dict[str, Any] = res.as_dict()
        if res.outcome == TrialState.DONE and res.objective is not None:
            t = self.store.transition(
                t.id,
                TrialState.DONE,
                valid=True,
                feasible=True,
                objective=res.objective,
                loss=self.loss(res.objective),
                measurements=meas,
            )
        else:
            t = self.store.transition(
                t.id, res.outcome, valid=res.valid, feasible=False, reason=res.reason,
                measurements=meas,
            )  # fmt: skip
        self._result(t, res, label)
        return t

    def _result(self, t: Trial, res: MeasureResult | None, label: str) -> None:
        self._counted(t)
        objective = None if res is None else res.objective
        reason = t.reason if res is None else res.reason
        self._audit("result", trial=t.number, outcome=t.state, objective=objective, reason=reason)
        self._log(
            logging.INFO, "measured", t, "trial %d %s: objective=%s%s", t.number, t.state,
            fmt(objective), f" ({reason})" if reason else "",
        )  # fmt: skip
        self.progress.line(self.line(t, label, res))

    def rolled_back(
        self,
        t: Trial,
        res: MeasureResult | None,
        *,
        state: TrialState,
        reason_kind: str,
        reason: str,
        restored: Any,
        label: str,
    ) -> Trial:
        """A trial backed out to ``restored`` (incumbent params or a snapshot) and why."""
        meas: dict[str, Any] = res.as_dict() if res is not None else {}
        meas["rollback_reason"] = reason_kind
        fields: dict[str, Any] = {"rolled_back": True, "reason": reason, "measurements": meas}
        if state != TrialState.ROLLED_BACK:
            fields.update(valid=state != TrialState.INVALID, feasible=False)
        t = self.store.transition(t.id, state, **fields)
        self.metrics.rollback(self.name, reason_kind)
        self._audit("rollback", trial=t.number, reason=reason, to=restored)
        self._log(
            logging.WARNING, "rolled_back", t, "trial %d rolled back (%s): %s", t.number,
            reason_kind, reason,
        )  # fmt: skip
        self._result(t, res, label)
        return t

    def rollback_failed(self, t: Trial, error: Exception) -> None:
        self._audit("rollback_failed", trial=t.number, error=str(error))
        self._log(
            logging.ERROR, "rollback_failed", t, "trial %d: return to the incumbent failed "
            "(%s); restoring the trial's snapshot", t.number, error,
        )  # fmt: skip

    def interrupted(self, t: Trial) -> Trial:
        """A trial found in flight on start, restored to its snapshot."""
        meas = dict(t.measurements, rollback_reason=RollbackReason.INTERRUPTED)
        done = self.store.transition(
            t.id,
            TrialState.ROLLED_BACK,
            measurements=meas,
            reason=f"interrupted in state {t.state}; restored snapshot",
        )
        self.metrics.rollback(self.name, RollbackReason.INTERRUPTED)
        self._counted(done)
        self._audit(
            "rollback", trial=t.number, reason="interrupted", state=t.state, restored=t.snapshot
        )
        self._log(logging.WARNING, "rolled_back", t, "trial %d was interrupted in state %s; "
                  "restored its snapshot", t.number, t.state)  # fmt: skip
        self.progress.line(f"resumed: trial {t.number} was {done.reason}")
        return done

    # the incumbent ------------------------------------------------------------------------------
    def promoted(self, t: Trial, why: str, value: float | None = None, **fields: Any) -> None:
        """``t`` is the new incumbent, with ``value`` (default: its objective)."""
        value = t.objective if value is None else value
        assert value is not None
        self.store.set_incumbent(self.name, t.id, value)
        self.metrics.set_best(self.name, value)
        self._audit("promote", trial=t.number, objective=value, why=why, **fields)
        self._log(logging.INFO, "promoted", t, "trial %d promoted: %s", t.number, why)
        self.progress.line(f"new best: trial {t.number} objective={fmt(value)} ({why})")

    def kept(self, incumbent: Trial, value: float, why: str) -> None:
        """The incumbent stays, with its latest measured value."""
        self.store.set_incumbent(self.name, incumbent.id, value)
        self.metrics.set_best(self.name, value)
        self._log(logging.INFO, "kept", incumbent, "incumbent trial %d kept: %s",
                  incumbent.number, why)  # fmt: skip

    def deferred(self, t: Trial, why: str) -> None:
        self._audit("promote_deferred", trial=t.number, reason=why)
        self._log(logging.INFO, "deferred", t, "promotion of trial %d deferred: %s", t.number, why)

    def final_applied(self, best: Trial, value: float, t: Trial) -> None:
        """The best, applied and measured again at the end: its fresh value is the incumbent's."""
        self.store.set_incumbent(self.name, best.id, value)
        self.metrics.set_best(self.name, value)
        self._audit("apply_best", trial=best.number, params=best.params, objective=value)
        self._log(logging.INFO, "applied", t, "best trial %d applied and measured: objective=%s",
                  best.number, fmt(value))  # fmt: skip

    def apply_failed(self, t: Trial, error: Exception, restored: Any, label: str) -> Trial:
        """An apply or verify failed; the snapshot was restored."""
        return self.rolled_back(
            t,
            None,
            state=TrialState.ROLLED_BACK,
            reason_kind=RollbackReason.APPLY_FAILED,
            reason=f"apply failed: {error}",
            restored=restored,
            label=label,
        )

    def advised(self, params: Params, why: str) -> None:
        a = self.store.propose(self.name, params, {}, kind=TrialKind.ADVICE, reason=why)
        self.store.transition(a.id, TrialState.ADVISED)
        self._audit("advise", params=params, reason=why)
        self._log(logging.INFO, "advised", a, "advice: %s: %s", why, params)
        shown = " ".join(f"{k}={fmt(v)}" for k, v in params.items())
        self.progress.line(f"advisory: {why}: {shown} (run with --apply to change anything)")

    def manual_rollback(self, to: str, restored: Any) -> None:
        self._audit("rollback", reason=f"requested: to {to}", restored=restored)
        self.metrics.rollback(self.name, RollbackReason.MANUAL)
        self._log(logging.WARNING, "rolled_back", None, "rolled back to %s on request", to)

    def stopped(self, why: str, *, error: bool = False) -> None:
        self._audit("stop", reason=why)
        self._log(logging.ERROR if error else logging.INFO, "stopped", None, "stopped: %s", why)

    # progress -----------------------------------------------------------------------------------
    def line(self, t: Trial, label: str, res: MeasureResult | None) -> str:
        """One progress line: position in the budget, params, objective, constraints, outcome."""
        params = " ".join(f"{k}={fmt(v)}" for k, v in t.params.items())
        obj = "-" if t.objective is None else fmt(t.objective)
        cons = ""
        if res is not None and res.constraints:
            cons = " " + " ".join(f"{k}={fmt(v)}" for k, v in res.constraints.items())
        inc = self.incumbent()
        best = "-" if inc is None else f"{fmt(inc[1])} (trial {inc[0].number})"
        tag = "" if t.kind == TrialKind.TRIAL else f" [{t.kind}]"
        why = f" ({t.reason})" if t.reason and t.state != TrialState.DONE else ""
        return f"trial {label}{tag} {params} | objective={obj}{cons} | {t.state}{why} | best={best}"
