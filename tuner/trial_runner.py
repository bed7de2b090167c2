"""One trial: snapshot, record, apply, verify, measure, and back out of anything unmeasured.

Safety invariant 2 lives here: a configuration stays applied only when its measurement is valid
and feasible. A breach, an invalid measurement (a failing or empty signal, too little traffic),
an unreadable SLO and an error while measuring all return the system at once to the incumbent's
params, else to the snapshot taken just before the trial; a failed apply or verify restores the
snapshot. Whichever it is, the recorder writes it down before the next step.
"""

from __future__ import annotations

import logging
from typing import Any

from tuneloop.clock import Clock
from tuner.appliers.base import ApplierError
from tuner.measure import Measurer, MeasureResult
from tuner.progress import Progress
from tuner.recorder import RollbackReason, TrialRecorder
from tuner.store import Trial
from tuner.strategy.base import Params
from tuner.targets import Targets
from tuner.trial_state import TrialKind, TrialState

log = logging.getLogger(__name__)


def _back_out_reason(res: MeasureResult) -> tuple[TrialState, str, str]:
    """(final state, rollback reason label, reason text) for a result that cannot stay."""
    if res.valid:
        return TrialState.INFEASIBLE, RollbackReason.BREACH, res.reason or "constraint breached"
    kind = RollbackReason.SIGNAL_FAILURE if res.signal_failure else RollbackReason.INVALID
    return TrialState.INVALID, kind, res.reason or "measurement invalid"


class TrialRunner:
    """Runs single trials for one experiment; remembers when it last applied a change."""

    def __init__(
        self,
        targets: Targets,
        measurer: Measurer,
        recorder: TrialRecorder,
        progress: Progress,
        clock: Clock,
    ) -> None:
        self.targets = targets
        self.measurer = measurer
        self.recorder = recorder
        self.progress = progress
        self.clock = clock
        self.last_apply_at: float | None = None

    def run(
        self, params: Params, kind: str = TrialKind.TRIAL, note: str = "", label: str = "#{number}"
    ) -> tuple[Trial, MeasureResult | None]:
        """Snapshot, record, apply, verify, measure one configuration; back out on any failure.

        ``label`` names the trial in progress output; ``{number}`` becomes its trial number.
        """
        before = self.targets.read()
        snap = self.targets.snapshot()
        t = self.recorder.proposed(params, snap, kind, note, before)
        shown = label.format(number=t.number)
        t = self.recorder.applying(t)
        try:
            self.targets.apply(params)
        except ApplierError as exc:
            self.targets.restore(snap)  # restore first: the row says "applying" until it is done
            return self.recorder.apply_failed(t, exc, snap, shown), None
        self.last_apply_at = self.clock.now()
        t = self.recorder.applied(t)
        t = self.recorder.measuring(t)
        self.measurer.on_tick = lambda tick: self.progress.tick(shown, tick)
        try:
            res = self.measurer.measure(self.targets.class_of_change(before, params))
        except Exception as exc:
            log.error("trial %d: measuring raised %r; backing out", t.number, exc,
                      extra={"experiment": t.experiment, "trial": t.number})  # fmt: skip
            self.back_out(
                t, None, TrialState.ROLLED_BACK, RollbackReason.ERROR, f"error: {exc}", shown
            )
            raise
        finally:
            self.measurer.on_tick = None
        if res.outcome == TrialState.DONE:
            return self.recorder.measured(t, res, shown), res
        state, reason_kind, reason = _back_out_reason(res)
        return self.back_out(t, res, state, reason_kind, reason, shown), res

    def back_out(
        self,
        t: Trial,
        res: MeasureResult | None,
        state: TrialState,
        reason_kind: str,
        reason: str,
        label: str,
    ) -> Trial:
        """Return to the incumbent (or the trial's snapshot) and record why."""
        inc = self.recorder.incumbent()
        target: Any
        try:  # the final apply *is* the incumbent: it goes back to what was in place before
            if inc is not None and inc[0].id != t.id and t.kind != TrialKind.FINAL:
                self.targets.apply(inc[0].params)
                target = inc[0].params
            else:
                self.targets.restore(t.snapshot)
                target = t.snapshot
        except ApplierError as exc:  # fall back to the snapshot taken just before this trial
            self.recorder.rollback_failed(t, exc)
            self.targets.restore(t.snapshot)
            target = t.snapshot
        return self.recorder.rolled_back(
            t, res, state=state, reason_kind=reason_kind, reason=reason, restored=target,
            label=label,
        )  # fmt: skip
