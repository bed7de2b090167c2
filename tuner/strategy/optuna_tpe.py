"""Optuna's TPE sampler behind the same seam, for comparison (the ``optuna`` extra).

Optuna is imported when the strategy is built, so the tuner runs without it unless an experiment
asks for ``optuna-tpe``. Initial points are enqueued trials. A told configuration that differs from
the one asked (the guard clipped it) fails the asked trial and adds the measured one as a completed
trial, so the sampler learns from what was really measured. Another Optuna sampler may be passed
(``sampler=``) to compare it behind the same seam. Infeasible trials get the same
worst-feasible-plus-margin value as the GP strategy; invalid trials are failed, never valued.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tuneloop.validation import ConfigError
from tuner.appliers.base import Value
from tuner.space import Space, coerce
from tuner.strategy.base import BestObserved, InfeasibleLiar, Params, Strategy, TrialResult


def import_optuna() -> Any:
    """The optuna module, or a ConfigError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "strategy.name",
            "optuna-tpe needs the optional 'optuna' extra: pip install 'tuneloop[optuna]'",
        ) from None
    return optuna


class OptunaTPE(Strategy):
    """Tree-structured Parzen estimator via ``optuna.Study.ask``/``tell``."""

    name = "optuna-tpe"

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        n_initial_points: int = 5,
        initial: Sequence[Params] = (),
        sampler: Any | None = None,
    ) -> None:
        optuna = import_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.space = space
        dist = optuna.distributions
        self._dists: dict[str, Any] = {}
        for k in space.knobs:
            if k.type == "categorical":
                self._dists[k.name] = dist.CategoricalDistribution(list(k.categories))
            elif k.type == "int":
                self._dists[k.name] = dist.IntDistribution(
                    int(k.low or 0), int(k.high or 0), log=k.log
                )
            else:
                self._dists[k.name] = dist.FloatDistribution(k.low, k.high, log=k.log)
        if sampler is None:
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_initial_points)
        self._study = optuna.create_study(direction="minimize", sampler=sampler)
        for point in initial:
            self._study.enqueue_trial(dict(point), skip_if_exists=True)
        self._pending: list[Any] = []
        self._liar = InfeasibleLiar()
        self.best_observed = BestObserved()

    def ask(self) -> Params:
        trial = self._study.ask(self._dists)
        self._pending.append(trial)
        return {k.name: coerce(k, trial.params[k.name]) for k in self.space.knobs}

    def tell(self, params: Mapping[str, Value], result: TrialResult) -> None:
        want = self.space.to_params(self.space.to_point(params))
        self.best_observed.observe(want, result)
        value: float | None = None
        if (
            result.valid
            and result.feasible
            and result.value is not None
            and math.isfinite(result.value)
        ):
            value = result.value
            self._liar.observe(value)
        elif result.valid and not result.feasible:
            value = self._liar.value()
        state = self._optuna.trial.TrialState
        matched = False
        for trial in self._pending:
            if not matched and self.space.to_params(self.space.to_point(trial.params)) == want:
                matched = True
                if value is None:
                    self._study.tell(trial, state=state.FAIL)
                else:
                    self._study.tell(trial, value)
            else:
                self._study.tell(trial, state=state.FAIL)
        self._pending = []
        if not matched and value is not None:
            frozen = self._optuna.trial.create_trial(
                params=dict(want), distributions=self._dists, value=value
            )
            self._study.add_trial(frozen)
