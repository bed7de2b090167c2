"""Trial states and kinds: one definition for the store, the loop, the metrics and the report.

Both are ``StrEnum``s, so their values are the strings already stored in trial stores and
printed in reports, and comparing with a plain string still works.
"""

from __future__ import annotations

from enum import StrEnum


class TrialState(StrEnum):
    """Where a trial is in its life; see ``TRANSITIONS`` for the allowed moves."""

    PROPOSED = "proposed"
    APPLYING = "applying"
    APPLIED = "applied"
    MEASURING = "measuring"
    DONE = "done"
    INVALID = "invalid"
    INFEASIBLE = "infeasible"
    ROLLED_BACK = "rolled_back"
    ADVISED = "advised"


class TrialKind(StrEnum):
    """Why a trial was run."""

    TRIAL = "trial"  # a strategy proposal
    INCUMBENT = "incumbent"  # a re-measurement of the best before a challenger is promoted
    BASELINE = "baseline"  # advisory mode: the current configuration measured unchanged
    FINAL = "final"  # applying the chosen configuration at the end
    CHALLENGER = "challenger"  # a re-measurement of a challenger that won within the noise
    ADVICE = "advice"  # advisory mode: the recommendation, recorded and never applied


FINAL_STATES = frozenset(
    {
        TrialState.DONE,
        TrialState.INVALID,
        TrialState.INFEASIBLE,
        TrialState.ROLLED_BACK,
        TrialState.ADVISED,
    }
)
IN_FLIGHT_STATES = frozenset(
    {TrialState.PROPOSED, TrialState.APPLYING, TrialState.APPLIED, TrialState.MEASURING}
)
TRANSITIONS: dict[TrialState, frozenset[TrialState]] = {
    TrialState.PROPOSED: frozenset(
        {TrialState.APPLYING, TrialState.ROLLED_BACK, TrialState.ADVISED, TrialState.MEASURING}
    ),
    TrialState.APPLYING: frozenset({TrialState.APPLIED, TrialState.ROLLED_BACK}),
    TrialState.APPLIED: frozenset({TrialState.MEASURING, TrialState.DONE, TrialState.ROLLED_BACK}),
    TrialState.MEASURING: frozenset(
        {TrialState.DONE, TrialState.INVALID, TrialState.INFEASIBLE, TrialState.ROLLED_BACK}
    ),
}
