"""Random search: the baseline every other strategy must beat.

Serves the initial points first, then samples each dimension from its prior (log-uniform for
log-scaled knobs). Outcomes are not used, so ``tell`` only drops initial points already tried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from skopt.space import Space as SkSpace

from tuner.appliers.base import Value
from tuner.space import Space
from tuner.strategy.base import BestObserved, Params, Strategy, TrialResult


class RandomSearch(Strategy):
    """Uniform (or log-uniform) sampling over the space."""

    name = "random"

    def __init__(self, space: Space, *, seed: int = 0, initial: Sequence[Params] = ()) -> None:
        self.space = space
        self._sk = SkSpace(space.dimensions())
        self._rng = np.random.RandomState(seed)
        self._queue: list[Params] = [dict(p) for p in initial]
        self.told = 0
        self.best_observed = BestObserved()

    def ask(self) -> Params:
        if self._queue:
            return self._queue.pop(0)
        return self.space.to_params(self._sk.rvs(n_samples=1, random_state=self._rng)[0])

    def tell(self, params: Mapping[str, Value], result: TrialResult) -> None:
        point = self.space.to_point(params)
        self._queue = [p for p in self._queue if self.space.to_point(p) != point]
        if result.valid:
            self.told += 1
        self.best_observed.observe(params, result)
