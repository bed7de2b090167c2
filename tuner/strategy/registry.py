"""Build a strategy by the name an experiment gives under ``strategy.name``."""

from __future__ import annotations

from collections.abc import Sequence

from tuneloop.validation import ConfigError
from tuner.space import Space
from tuner.spec import StrategyConfig
from tuner.strategy.base import Params, Strategy

NAMES = ("skopt-gp", "random", "optuna-tpe")


def build_strategy(
    config: StrategyConfig, space: Space, initial: Sequence[Params] = ()
) -> Strategy:
    """A fresh strategy; unknown names raise ConfigError on ``strategy.name``."""
    if config.name == "skopt-gp":
        from tuner.strategy.skopt_gp import SkoptGP

        return SkoptGP(
            space,
            seed=config.seed,
            n_initial_points=config.initial_points,
            acq_func=config.acq_func,
            initial=initial,
        )
    if config.name == "random":
        from tuner.strategy.random_search import RandomSearch

        return RandomSearch(space, seed=config.seed, initial=initial)
    if config.name == "optuna-tpe":
        from tuner.strategy.optuna_tpe import OptunaTPE

        return OptunaTPE(
            space, seed=config.seed, n_initial_points=config.initial_points, initial=initial
        )
    raise ConfigError("strategy.name", f"must be one of {', '.join(NAMES)}, got {config.name!r}")
