"""The strategy seam: ``ask() -> params``, ``tell(params, result)``.

Strategies minimise. The loop turns "maximize" objectives into their negation and passes
infeasible or invalid trials as ``TrialResult`` with ``value=None``: a strategy must never treat
them as a number it measured (skopt's default is told a penalty derived from the worst feasible
value seen, documented in its module; random search ignores them).

``recommend()`` is the configuration to leave applied when the budget ends. A single measurement
window is noisy (finite random arrivals), so the best observed value is biased towards lucky
windows; a strategy with a model recommends by its model (the GP: the measured configuration
with the best posterior mean), the others by the best feasible value observed.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from tuner.appliers.base import Value

Params = dict[str, Value]


@dataclass(frozen=True)
class TrialResult:
    """What the loop learned from one trial."""

    value: float | None  # objective to minimise; None when invalid or infeasible
    feasible: bool = True
    valid: bool = True


class BestObserved:
    """The feasible configuration with the best (lowest) value told so far."""

    def __init__(self) -> None:
        self.params: Params | None = None
        self.value = math.inf

    def observe(self, params: Mapping[str, Value], result: TrialResult) -> None:
        if not (result.valid and result.feasible and result.value is not None):
            return
        if math.isfinite(result.value) and result.value < self.value:
            self.params, self.value = dict(params), result.value


class Strategy(ABC):
    """Ask/tell search over an experiment's knobs."""

    name: str = ""

    def recommend(self) -> Params | None:
        """The configuration to leave applied: by default the best feasible one observed
        (strategies keep a :class:`BestObserved` as ``best_observed``); None until one exists."""
        best: BestObserved | None = getattr(self, "best_observed", None)
        return None if best is None or best.params is None else dict(best.params)

    @abstractmethod
    def ask(self) -> Params:
        """The next configuration to try."""

    @abstractmethod
    def tell(self, params: Mapping[str, Value], result: TrialResult) -> None:
        """Record the outcome of a configuration (also for replayed trials on resume)."""


def replay(strategy: Strategy, history: list[tuple[Params, TrialResult]]) -> None:
    """Tell a strategy every stored outcome, in order (used when a tuner resumes)."""
    batch = getattr(strategy, "tell_many", None)
    if callable(batch):
        batch(history)
        return
    for params, result in history:
        strategy.tell(params, result)


class InfeasibleLiar:
    """The value told for an infeasible trial: the worst feasible value seen plus a margin.

    Infeasible configurations steer the search away without a hand-weighted penalty: the surrogate
    sees them as slightly worse than anything feasible, so constraints stay constraints. The
    margin is 10% of the spread of feasible values (or of the worst value's magnitude, or 1.0).
    Until a feasible value exists, infeasible trials are held back and told later.
    """

    def __init__(self) -> None:
        self.feasible: list[float] = []

    def observe(self, value: float) -> None:
        self.feasible.append(value)

    def value(self) -> float | None:
        if not self.feasible:
            return None
        worst, best = max(self.feasible), min(self.feasible)
        margin = 0.1 * (worst - best) or 0.1 * abs(worst) or 1.0
        return worst + margin
