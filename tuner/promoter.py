"""Runs the promotion rules of :mod:`tuner.promotion` against the live system.

When a trial beats the incumbent on paper, the incumbent is re-measured first (kind
``incumbent``); if the challenger then wins by less than the measurement noise, the challenger is
measured once more (kind ``challenger``) and judged on its mean. The noise is the standard
deviation of the incumbent configuration's own repeated measurements in the store (every valid
measurement of the same point: its trial, its re-measurements, advisory baselines), so it is
learnt from the system and needs no setting; with fewer than two it is zero and one window
decides, as before. Re-measurements sit outside the trial budget and are told to the strategy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tuner.measure import MeasureResult
from tuner.promotion import PromotionAction, decide_promotion, noise_estimate
from tuner.recorder import TrialRecorder
from tuner.space import Space
from tuner.spec import Experiment
from tuner.store import Trial
from tuner.trial_runner import TrialRunner
from tuner.trial_state import TrialKind, TrialState

log = logging.getLogger(__name__)

Tell = Callable[[Trial], None]


class Promoter:
    """Decides and records promotions for one experiment."""

    def __init__(
        self,
        experiment: Experiment,
        space: Space,
        runner: TrialRunner,
        recorder: TrialRecorder,
        wait_to_apply: Callable[[], None],
    ) -> None:
        self.exp = experiment
        self.direction = experiment.objective.direction
        self.space = space
        self.runner = runner
        self.recorder = recorder
        self.wait_to_apply = wait_to_apply

    def noise(self, incumbent: Trial) -> float:
        """Spread of the incumbent configuration's valid measurements."""
        point = self.space.to_point(incumbent.params)
        values = [
            t.objective
            for t in self.recorder.store.trials(self.exp.name)
            if t.state == TrialState.DONE
            and t.objective is not None
            and t.kind != TrialKind.FINAL
            and self.space.to_point(t.params) == point
        ]
        return noise_estimate(values)

    def _remeasure(
        self, t: Trial, kind: TrialKind, note: str, tell: Tell
    ) -> tuple[Trial, MeasureResult | None]:
        self.wait_to_apply()
        again, res = self.runner.run(dict(t.params), kind=kind, note=note)
        tell(again)
        return again, res

    def recover(self) -> Trial | None:
        """Promote what a stopped run measured but did not promote; returns it, if any.

        With no incumbent, the first measured feasible trial is promoted at once; a run killed
        between that trial's result and its promotion leaves a measured trial and no incumbent.
        The best such trial is promoted on the next start, as the stopped run would have."""
        if self.recorder.incumbent() is not None:
            return None
        measured = [
            (self.recorder.loss(t.objective), t)
            for t in self.recorder.store.trials(self.exp.name)
            if t.kind == TrialKind.TRIAL and t.state == TrialState.DONE and t.objective is not None
        ]
        if not measured:
            return None
        _, best = min(measured, key=lambda pair: pair[0])
        self.recorder.promoted(best, "measured before the last run stopped; promoted on resume")
        return best

    def consider(self, t: Trial, tell: Tell) -> list[MeasureResult | None]:
        """Promote ``t`` if it wins; returns the results of the re-measurements run."""
        if t.state != TrialState.DONE or t.objective is None:
            return []
        inc = self.recorder.incumbent()
        if inc is None:
            self.recorder.promoted(t, decide_promotion([], [t.objective], self.direction).reason)
            return []
        inc_trial, inc_value = inc
        if inc_trial.id == t.id:
            return []
        same = self.space.to_point(inc_trial.params) == self.space.to_point(t.params)
        first = decide_promotion([inc_value], [t.objective], self.direction, incumbent_fresh=same)
        if first.action == PromotionAction.PROMOTE:  # the same configuration, measured anew
            self.recorder.promoted(t, first.reason)
        if first.action != PromotionAction.REMEASURE_INCUMBENT:
            return []
        note = f"re-measure incumbent (trial {inc_trial.number})"
        again, res = self._remeasure(inc_trial, TrialKind.INCUMBENT, note, tell)
        results = [res]
        if again.state == TrialState.INFEASIBLE:
            why = f"incumbent (trial {inc_trial.number}) breached an SLO when re-measured"
            self.recorder.promoted(t, why, replaced=inc_trial.number)
            return results
        if again.state != TrialState.DONE or again.objective is None:
            self.recorder.deferred(t, "incumbent re-measure invalid")
            return results
        fresh = again.objective
        noise = self.noise(inc_trial)
        log.debug("%s: incumbent noise %.4g", self.exp.name, noise,
                  extra={"experiment": self.exp.name, "trial": t.number})  # fmt: skip
        challenger: list[float] = [t.objective]
        winner = t
        while True:
            decision = decide_promotion([fresh], challenger, self.direction, noise)
            if decision.action != PromotionAction.REMEASURE_CHALLENGER:
                break
            note = f"re-measure challenger (trial {t.number}): {decision.reason}"
            winner, res = self._remeasure(t, TrialKind.CHALLENGER, note, tell)
            results.append(res)
            if winner.state != TrialState.DONE or winner.objective is None:
                self.recorder.kept(inc_trial, fresh, f"challenger re-measure {winner.state}")
                return results
            challenger.append(winner.objective)
        if decision.promote:
            mean = sum(challenger) / len(challenger)
            self.recorder.promoted(
                winner, decision.reason, value=mean, replaced=inc_trial.number,
                incumbent_remeasured=fresh, noise=noise,
            )  # fmt: skip
        else:
            self.recorder.kept(inc_trial, fresh, decision.reason)
        return results
