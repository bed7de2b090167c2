"""scikit-optimize's Gaussian-process optimizer: the default strategy (the design card's choice).

The queue of initial points (current configuration first, then domain points) is served by
``ask`` first. Until ``n_initial_points`` valid trials have been measured (initial points count,
feasible or not), ``ask`` then walks a maximin Latin hypercube of its own, sized to what the
initial phase still needs, so that its few points cover the space (a larger design's first
points do not); after that the GP proposes. Only finite values are told. The default acquisition
is expected improvement (``EI``, ``xi`` 0.01); ``gp_hedge`` is an option.

Infeasible trials are told :class:`~tuner.strategy.base.InfeasibleLiar`'s value (the worst
feasible value seen plus a margin); invalid trials (no traffic) are never told. Until a feasible
value exists infeasible points are held back (there is no scale to lie on yet) and ``ask`` keeps
walking space-filling designs, skipping points already asked. Once a feasible value arrives the
held points are told at the liar's value and the GP takes over. With ``feasibility_model`` (the
default) EI is also weighted by a separate model's probability that a candidate meets the
constraints (:mod:`tuner.strategy.feasibility`); on the benchmark this kept or improved every
problem, while dropping the liar and relying on that model alone made the search overshoot
SLO-bound optima, so both are kept.
``ask`` never proposes a point it has already proposed or been told (a deterministic target
would only repeat a measurement; the loop re-measures the incumbent itself before promoting a
new best): a repeat from the optimizer is replaced by the first unseen point of a random draw.

``recommend`` (what to leave applied) is the measured, feasible configuration with the lowest
posterior mean of the GP (skopt's GP has a learned white-noise term, so the mean at a point is
pulled towards what its neighbours measured), among those the feasibility model also calls
feasible (P >= 1/2); one lucky measurement window does not outrank a region that is better on
average. Until the GP is fitted it is the best feasible value observed.

Acquisition: expected improvement (or PI/LCB) is maximised over ``n_points`` (default 2,000)
candidates: half (``1 - local_fraction``) drawn from the whole space, half *local* ones, neighbours
of the best observed points (each dimension moved with probability 1/2 by about a tenth of its
range, in log space for log-scaled knobs; a category changed to another). Tuning spaces are small,
mixed integer/categorical spaces where a good configuration usually has better ones nearby, and
uniform candidates alone rarely land close enough to refine it. ``gp_hedge`` keeps skopt's own
candidate sampling. Sampling candidates rather than running L-BFGS restarts is also what keeps a
decision fast. Surrogate fits run with BLAS limited to one thread: the matrices are tiny (at most a
few hundred observations), and on a shared 2-core node thread contention made decisions several
times slower.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from skopt import Optimizer
from skopt.acquisition import gaussian_ei, gaussian_lcb, gaussian_pi
from skopt.sampler import Lhs
from skopt.space import Categorical, Dimension
from threadpoolctl import threadpool_limits

from tuner.appliers.base import Value
from tuner.space import Space
from tuner.strategy.base import BestObserved, InfeasibleLiar, Params, Strategy, TrialResult
from tuner.strategy.feasibility import FeasibilityModel, probit_floor

FILL_POINTS = 32  # size of the space-filling design walked while nothing can be told
RANDOM_TRIES = 200  # random draws tried when replacing a repeated proposal
LOCAL_SCALE = 0.1  # a local candidate's step, as a fraction of each dimension's (log) range
LOCAL_CENTRES = 3  # local candidates surround this many of the best observed points
ACQUISITIONS = {"EI": gaussian_ei, "PI": gaussian_pi, "LCB": gaussian_lcb}


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
        n_points: int = 2000,
        feasibility_model: bool = True,
        xi: float = 0.01,
        local_fraction: float = 0.5,
    ) -> None:
        if not 0.0 <= local_fraction <= 1.0:
            raise ValueError(f"local_fraction must be within [0, 1], got {local_fraction}")
        self.space = space
        self._acq = acq_func
        self._n_points = n_points
        own = acq_func in ACQUISITIONS  # candidates chosen here; skopt's own pass kept tiny
        self._opt = Optimizer(
            space.dimensions(),
            base_estimator="GP",
            acq_func=acq_func,
            acq_optimizer="sampling",
            acq_optimizer_kwargs={"n_points": 1 if own else n_points},
            n_initial_points=1,  # the initial design is walked here (see ``ask``)
            initial_point_generator="lhs",
            random_state=seed,
        )
        self._rng = np.random.RandomState(seed)
        self._seed = seed
        self._queue: list[Params] = [dict(p) for p in initial]
        self._liar = InfeasibleLiar()
        self._held: list[list[Any]] = []  # infeasible points waiting for a feasible value
        self._seen: set[tuple[Any, ...]] = set()  # every point asked or told
        self._fill: list[list[Any]] | None = None
        self._n_initial = n_initial_points
        self._use_feasibility = feasibility_model
        self._xi = xi
        self._local = local_fraction
        self._labelled: list[tuple[list[Any], bool]] = []  # valid points and their feasibility
        self._feas = FeasibilityModel(seed)
        self._feas_n = 0  # labelled points the feasibility model was fitted on
        self.best_observed = BestObserved()

    # ask ----------------------------------------------------------------------------------------
    def ask(self) -> Params:
        while self._queue:
            params = self._queue.pop(0)
            if self._key(params) not in self._seen:
                return self._mark(params)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")  # "evaluated at this point before": handled below
            if not self._opt.yi or len(self._labelled) < self._n_initial:
                return self._mark(self._space_filling())
            if self._acq in ACQUISITIONS and self._opt.models:
                proposal = self._best_candidate()
            else:
                proposal = self.space.to_params(self._opt.ask())
        if self._key(proposal) in self._seen:
            proposal = self._unseen_random()
        return self._mark(proposal)

    def _key(self, params: Mapping[str, Value]) -> tuple[Any, ...]:
        return tuple(self.space.to_point(params))

    def _mark(self, params: Params) -> Params:
        self._seen.add(self._key(params))
        return params

    def _best_candidate(self) -> Params:
        """The unseen candidate (global or local) with the best acquisition value."""
        opt = self._opt
        n_local = int(self._n_points * self._local)
        order = np.argsort(opt.yi)[:LOCAL_CENTRES]
        per = max(1, n_local // len(order))
        cands = opt.space.rvs(n_samples=self._n_points - n_local, random_state=self._rng)
        for i in order:
            cands += [self._neighbour(opt.Xi[int(i)]) for _ in range(per)]
        fn = ACQUISITIONS[self._acq]
        xt = opt.space.transform(cands)
        values = fn(xt, opt.models[-1], **self._acq_kwargs())
        if self._use_feasibility and self._acq != "LCB":
            values = values * probit_floor(self._feasibility().probability(xt))
        # EI and PI are maximised; LCB is a bound to minimise
        ranked = np.argsort(values if self._acq == "LCB" else -values)
        for j in ranked:
            params = self.space.to_params(cands[int(j)])
            if self._key(params) not in self._seen:
                return params
        return self.space.to_params(cands[int(ranked[0])])

    def _acq_kwargs(self) -> dict[str, Any]:
        if self._acq == "LCB":
            return {}
        return {"y_opt": float(np.min(self._opt.yi)), "xi": self._xi}

    def _feasibility(self) -> FeasibilityModel:
        """The feasibility model, refitted when new labelled points arrived."""
        if self._feas_n != len(self._labelled):
            xs = self._opt.space.transform([p for p, _ in self._labelled])
            self._feas.fit(xs, [f for _, f in self._labelled])
            self._feas_n = len(self._labelled)
        return self._feas

    def _neighbour(self, point: Sequence[Any]) -> list[Any]:
        """A random neighbour: each dimension moves with probability 1/2 (at least one does)."""
        dims: list[Dimension] = list(self._opt.space.dimensions)
        move = self._rng.random_sample(len(dims)) < 0.5
        move[self._rng.randint(len(dims))] = True
        out: list[Any] = []
        for dim, x, moved in zip(dims, point, move, strict=True):
            if not moved:
                out.append(x)
            elif isinstance(dim, Categorical):
                others = [c for c in dim.categories if c != x]
                out.append(others[self._rng.randint(len(others))] if others else x)
            else:
                out.append(self._step(dim, x))
        return out

    def _step(self, dim: Any, x: Any) -> Any:
        low, high = float(dim.low), float(dim.high)
        if dim.prior == "log-uniform":
            span = np.log(high) - np.log(low)
            y = float(np.exp(np.log(float(x)) + self._rng.normal(0.0, LOCAL_SCALE * span)))
        else:
            y = float(x) + self._rng.normal(0.0, LOCAL_SCALE * (high - low))
        y = min(max(y, low), high)
        if isinstance(x, int | np.integer):
            moved = round(y)
            if moved == x:  # an integer step too small to move: move by one, inwards at a bound
                sign = 1 if self._rng.random_sample() < 0.5 else -1
                moved = x + sign if low <= x + sign <= high else x - sign
            return int(min(max(moved, low), high))
        return y

    def _space_filling(self) -> Params:
        """The next point of a maximin LHS design not yet seen (then random unseen points)."""
        if not self._fill:
            # first a design the size of what the initial phase still needs, so that its few
            # points cover the space; then (all infeasible so far) larger designs
            size = self._n_initial - len(self._labelled) if self._fill is None else FILL_POINTS
            lhs = Lhs(lhs_type="classic", criterion="maximin", iterations=200)
            seed = self._seed + len(self._labelled)
            self._fill = [list(p) for p in lhs.generate(self._opt.space, max(size, 2), seed)]
        while self._fill:
            params = self.space.to_params(self._fill.pop(0))
            if self._key(params) not in self._seen:
                return params
        return self._unseen_random()

    def _unseen_random(self) -> Params:
        """A random point not yet seen; in a space that small, any random point."""
        draws = self._opt.space.rvs(n_samples=RANDOM_TRIES, random_state=self._rng)
        params = [self.space.to_params(p) for p in draws]
        for p in params:
            if self._key(p) not in self._seen:
                return p
        return params[0]

    # tell ---------------------------------------------------------------------------------------
    def _observations(
        self, params: Mapping[str, Value], result: TrialResult
    ) -> list[tuple[list[Any], float]]:
        point = self.space.to_point(params)
        self._seen.add(tuple(point))
        if self._queue:
            self._queue = [p for p in self._queue if self.space.to_point(p) != point]
        self.best_observed.observe(params, result)
        if not result.valid:
            return []
        ok = result.feasible and result.value is not None and math.isfinite(result.value)
        self._labelled.append((point, ok))
        if ok and result.value is not None:
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

    # recommend ----------------------------------------------------------------------------------
    def recommend(self) -> Params | None:
        """The measured feasible configuration with the best posterior mean (see the module)."""
        measured: dict[tuple[Any, ...], list[Any]] = {}
        for point, ok in self._labelled:
            if ok:
                measured.setdefault(tuple(point), point)
        if not measured:
            return None
        if not self._opt.models:
            return super().recommend()
        points = list(measured.values())
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")
            xt = self._opt.space.transform(points)
            mean = np.asarray(self._opt.models[-1].predict(xt), dtype=float)
            if self._use_feasibility:
                likely = self._feasibility().probability(xt) >= 0.5
                if likely.any():
                    mean = np.where(likely, mean, np.inf)
        return self.space.to_params(points[int(np.argmin(mean))])

    @property
    def observations(self) -> int:
        return len(self._opt.yi)

    @property
    def held(self) -> int:
        """Infeasible points waiting for a feasible value before they can be told."""
        return len(self._held)
