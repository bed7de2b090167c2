"""A feasibility model: the probability that a configuration meets the experiment's constraints.

Constrained Bayesian optimisation (Gardner et al., 2014) weights expected improvement by the
probability of feasibility, so the optimizer stops proposing in regions it has seen fail without
distorting the objective's surrogate near the boundary, where optima of SLO-bound problems often
lie. The model here is a Gaussian process regression on labels +1 (feasible) and -1 (infeasible)
over the optimizer's normalised space, read as a probit: ``P(feasible) = Phi(mu / sd)``. That is
a least-squares classifier rather than a proper GP classifier, chosen because it fits in a few
milliseconds on the tens of points a tuning run has, and a trial costs minutes, not because it is
better calibrated. Until both labels have been seen it predicts 1 everywhere (nothing to learn).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel


class FeasibilityModel:
    """``fit(X, feasible)`` on normalised points, then ``probability(X)``."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._gp: GaussianProcessRegressor | None = None

    def fit(self, xs: Sequence[Sequence[float]], feasible: Sequence[bool]) -> None:
        """Fit on points (already transformed to the unit cube) and their feasibility."""
        if len(xs) != len(feasible):
            raise ValueError(f"fit: {len(xs)} points but {len(feasible)} labels")
        if len(xs) == 0 or all(feasible) or not any(feasible):
            self._gp = None
            return
        x = np.asarray(xs, dtype=float)
        y = np.where(np.asarray(feasible, dtype=bool), 1.0, -1.0)
        dims = x.shape[1]
        kernel = ConstantKernel(1.0, (0.1, 10.0)) * Matern(
            length_scale=np.full(dims, 0.3), length_scale_bounds=(0.05, 10.0), nu=2.5
        ) + WhiteKernel(0.01, (1e-4, 0.5))
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=False, random_state=self._seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a bound reached is fine here
            gp.fit(x, y)
        self._gp = gp

    def probability(self, xs: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """P(feasible) per point; all ones while the model has nothing to discriminate."""
        x = np.asarray(xs, dtype=float)
        if self._gp is None:
            return np.ones(len(x))
        mu, sd = self._gp.predict(x, return_std=True)
        return np.asarray(norm.cdf(mu / np.maximum(sd, 1e-9)), dtype=float)

    @property
    def fitted(self) -> bool:
        return self._gp is not None


def probit_floor(p: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Probabilities kept above ``floor`` so a product with EI still ranks candidates."""
    return np.maximum(p, floor)
