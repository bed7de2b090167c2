"""The strategy seam: ``ask() -> params``, ``tell(params, result)``.

Strategies minimise. The loop turns "maximize" objectives into their negation and passes
infeasible or invalid trials as ``TrialResult`` with ``value=None``: a strategy must never treat
them as a number it measured (skopt's default is told a penalty derived from the worst feasible
value seen, documented in its module; random search ignores them).
"""

from __future__ import annotations

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


class Strategy(ABC):
    """Ask/tell search over an experiment's knobs."""

    name: str = ""

    @abstractmethod
    def ask(self) -> Params:
        """The next configuration to try."""

    @abstractmethod
    def tell(self, params: Mapping[str, Value], result: TrialResult) -> None:
        """Record the outcome of a configuration (also for replayed trials on resume)."""
