"""scikit-optimize's Gaussian-process optimizer: the default strategy (the design card's choice).

The queue of initial points (current configuration first, then domain points) is served by
``ask`` before the optimizer's own space-filling (LHS) and acquisition points; whatever the loop
measured is told back, so initial points count towards ``n_initial_points``. Only finite values
are told. The default acquisition is expected improvement (``EI``); ``gp_hedge`` is an option.
Surrogate fits run with BLAS limited to one thread: the matrices are tiny (at most a few hundred
observations), and on a shared 2-core node thread contention made decisions several times slower.
Infeasible trials are told :class:`~tuner.strategy.base.InfeasibleLiar`'s value (the worst
feasible value seen plus a margin); invalid trials (no traffic) are never told.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from skopt import Optimizer
from threadpoolctl import threadpool_limits

from tuner.appliers.base import Value
from tuner.space import Space
from tuner.strategy.base import InfeasibleLiar, Params, Strategy, TrialResult


class SkoptGP(Strategy):
    """GP-based Bayesian optimization through ``skopt.Optimizer``."""

    name = "skopt-gp"

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        n_initial_points: int = 5,
        acq_func: str = "EI",
        initial: Sequence[Params] = (),
    ) -> None:
        self.space = space
        self._opt = Optimizer(
            space.dimensions(),
            base_estimator="GP",
            acq_func=acq_func,
            n_initial_points=n_initial_points,
            initial_point_generator="lhs",
            random_state=seed,
        )
        self._queue: list[Params] = [dict(p) for p in initial]
        self._liar = InfeasibleLiar()
        self._held: list[list[Any]] = []  # infeasible points waiting for a feasible value

    def ask(self) -> Params:
        if self._queue:
            return self._queue.pop(0)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")  # "evaluated at this point before": expected with noise
            return self.space.to_params(self._opt.ask())

    def _observations(
        self, params: Mapping[str, Value], result: TrialResult
    ) -> list[tuple[list[Any], float]]:
        point = self.space.to_point(params)
        if self._queue:
            self._queue = [p for p in self._queue if self.space.to_point(p) != point]
        if not result.valid:
            return []
        if result.feasible and result.value is not None and math.isfinite(result.value):
            self._liar.observe(result.value)
            held, self._held = self._held, []
            liar = self._liar.value()
            assert liar is not None
            return [(point, result.value)] + [(h, liar) for h in held]
        liar = self._liar.value()
        if liar is None:
            self._held.append(point)
            return []
        return [(point, liar)]

    def tell(self, params: Mapping[str, Value], result: TrialResult) -> None:
        self.tell_many([(dict(params), result)])

    def tell_many(self, history: Sequence[tuple[Params, TrialResult]]) -> None:
        """Tell several outcomes with a single surrogate refit."""
        xs: list[list[Any]] = []
        ys: list[float] = []
        for params, result in history:
            for x, y in self._observations(params, result):
                xs.append(x)
                ys.append(y)
        if xs:
            with warnings.catch_warnings(), threadpool_limits(limits=1):
                warnings.simplefilter("ignore")
                self._opt.tell(xs, ys)

    @property
    def observations(self) -> int:
        return len(self._opt.yi)
