"""Promotion as a pure function of measurements, direction and noise."""

from __future__ import annotations

import pytest

from tuner.promotion import PromotionAction, decide_promotion, noise_estimate

P = PromotionAction


def test_first_measurement_is_promoted_and_an_unmeasured_challenger_never():
    assert decide_promotion([], [1.0], "minimize").action == P.PROMOTE
    assert decide_promotion([1.0], [], "minimize").action == P.KEEP
    assert decide_promotion([], [], "maximize").action == P.KEEP


@pytest.mark.parametrize(
    ("incumbent", "challenger", "direction", "action"),
    [
        (2.0, 1.0, "minimize", P.PROMOTE),
        (1.0, 2.0, "minimize", P.KEEP),
        (1.0, 2.0, "maximize", P.PROMOTE),
        (2.0, 1.0, "maximize", P.KEEP),
        (1.0, 1.0, "minimize", P.KEEP),  # a tie keeps the incumbent
    ],
)
def test_direction(incumbent, challenger, direction, action):
    decision = decide_promotion([incumbent], [challenger], direction)
    assert decision.action == action and decision.reason


def test_a_stale_incumbent_is_remeasured_first_and_only_when_the_challenger_looks_better():
    stale = decide_promotion([2.0], [1.0], "minimize", incumbent_fresh=False)
    assert stale.action == P.REMEASURE_INCUMBENT and "re-measure" in stale.reason
    worse = decide_promotion([1.0], [2.0], "minimize", incumbent_fresh=False)
    assert worse.action == P.KEEP


def test_the_latest_incumbent_value_is_the_reference():
    assert decide_promotion([0.5, 2.0], [1.0], "minimize").action == P.PROMOTE


def test_a_win_within_the_noise_is_measured_again_then_judged_on_the_mean():
    small = decide_promotion([1.00], [0.97], "minimize", noise=0.05)
    assert small.action == P.REMEASURE_CHALLENGER and "noise" in small.reason
    # two windows: the threshold shrinks by sqrt(2) (0.035); a mean win of 0.04 is enough
    assert decide_promotion([1.0], [0.97, 0.95], "minimize", noise=0.05).promote
    still = decide_promotion([1.0], [0.99, 0.99], "minimize", noise=0.05)
    assert still.action == P.KEEP and "within the noise" in still.reason
    assert decide_promotion([1.0], [0.9], "minimize", noise=0.05).promote  # beyond the noise


def test_noise_estimate():
    assert noise_estimate([1.0]) == 0.0
    assert noise_estimate([1.0, 3.0]) == pytest.approx(2**0.5)
