"""Promotion of a challenger over the incumbent, as a pure function of their measurements.

Rules, in order (losses: the objective as minimised, so either direction works):

1. a challenger without a valid measurement is never promoted;
2. with no incumbent, the first valid, feasible measurement is promoted;
3. a challenger no better than the incumbent's latest measurement is not promoted;
4. an incumbent measured before the challenger's window (not *fresh*) is re-measured first, so
   a drift in load is not mistaken for an improvement;
5. a win smaller than the noise (the standard deviation of repeated incumbent measurements,
   divided by the square root of the challenger's windows) needs another challenger window,
   up to ``max_windows``; still within the noise after that, the incumbent stays;
6. otherwise the challenger is promoted.

The incumbent's latest value is the reference (the system drifts; older values are history);
the challenger's mean over its windows is its value.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Direction = Literal["minimize", "maximize"]


class PromotionAction(StrEnum):
    PROMOTE = "promote"
    KEEP = "keep"
    REMEASURE_INCUMBENT = "remeasure_incumbent"
    REMEASURE_CHALLENGER = "remeasure_challenger"


@dataclass(frozen=True)
class Promotion:
    action: PromotionAction
    reason: str

    @property
    def promote(self) -> bool:
        return self.action is PromotionAction.PROMOTE


def _loss(value: float, direction: Direction) -> float:
    return -value if direction == "maximize" else value


def noise_estimate(measurements: Sequence[float]) -> float:
    """Sample standard deviation of repeated measurements of one configuration (0 if < 2)."""
    return statistics.stdev(measurements) if len(measurements) >= 2 else 0.0


def decide_promotion(
    incumbent: Sequence[float],
    challenger: Sequence[float],
    direction: Direction,
    noise: float = 0.0,
    *,
    incumbent_fresh: bool = True,
    max_windows: int = 2,
) -> Promotion:
    """Whether ``challenger`` replaces ``incumbent``, given both objective values (raw)."""
    if not challenger:
        return Promotion(PromotionAction.KEEP, "challenger has no valid measurement")
    if not incumbent:
        return Promotion(PromotionAction.PROMOTE, "first valid, feasible measurement")
    mean = sum(challenger) / len(challenger)
    margin = _loss(incumbent[-1], direction) - _loss(mean, direction)
    versus = f"{mean:.4g} vs incumbent {incumbent[-1]:.4g}"
    if margin <= 0:
        return Promotion(PromotionAction.KEEP, f"not better: {versus}")
    if not incumbent_fresh:
        return Promotion(
            PromotionAction.REMEASURE_INCUMBENT, f"looks better ({versus}): re-measure incumbent"
        )
    threshold = noise / math.sqrt(len(challenger))
    if margin <= threshold:
        if len(challenger) < max_windows:
            return Promotion(
                PromotionAction.REMEASURE_CHALLENGER,
                f"wins by {margin:.3g}, within the noise {threshold:.3g}: measure it again",
            )
        return Promotion(
            PromotionAction.KEEP,
            f"wins by {margin:.3g} over {len(challenger)} windows, within the noise "
            f"{threshold:.3g}",
        )
    return Promotion(PromotionAction.PROMOTE, f"better: {versus}")
