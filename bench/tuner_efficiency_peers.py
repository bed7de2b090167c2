"""The contenders of the tuner-efficiency benchmark behind the ask/tell seam, at their defaults.

Only ``tuneloop`` is given the problem's current configuration and the space's domain points
(what an experiment file gives the tuner); every peer starts from its own defaults. Optuna's
samplers use the project's Optuna wrapper (the same handling of infeasible and invalid trials as
the GP strategy), with the sampler's own default start-up trials.
"""

from __future__ import annotations

from typing import Any

from tuner.appliers.base import KnobClass
from tuner.sim.problems import Problem
from tuner.space import Space, initial_points
from tuner.spec import InitHint
from tuner.spec import Knob as SpecKnob
from tuner.strategy.base import Strategy


def spec_knobs(problem: Problem) -> list[SpecKnob]:
    """The problem's knobs as experiment knobs (what the tuner's Space takes)."""
    out = []
    for k in problem.knobs:
        kind = {"int": "int", "real": "real", "cat": "categorical"}[k.kind]
        init = None
        if k.bdp is not None:
            init = InitHint(bdp_bandwidth_bps=k.bdp[0], bdp_rtt_s=k.bdp[1])
        elif k.capacity is not None:
            init = InitHint(capacity=k.capacity)
        out.append(
            SpecKnob(
                name=k.name,
                type=kind,  # type: ignore[arg-type]
                applier="sim",
                target=k.name,
                knob_class=KnobClass.HOT,
                low=None if kind == "categorical" else k.low,
                high=None if kind == "categorical" else k.high,
                categories=k.choices,
                log=k.log,
                current=problem.initial.get(k.name),
                init=init,
            )
        )
    return out


def optuna_gp_missing() -> str | None:
    """Why Optuna's GPSampler cannot run here, or None when it can."""
    try:
        import optuna
    except ImportError:
        return "optuna is not installed"
    if not hasattr(optuna.samplers, "GPSampler"):
        return f"optuna {optuna.__version__} has no samplers.GPSampler"
    try:
        import torch  # noqa: F401
    except ImportError:
        return "optuna.samplers.GPSampler needs torch, which is not installed"
    return None


def make_strategy(name: str, problem: Problem, space: Space, seed: int) -> Strategy:
    """A fresh contender called ``name`` for one run."""
    if name == "tuneloop":
        from tuner.strategy.skopt_gp import SkoptGP

        knobs = list(space.knobs)
        current = {k.name: problem.initial[k.name] for k in problem.knobs}
        caps = {
            k.name: float(k.init.capacity)
            for k in knobs
            if k.init is not None and isinstance(k.init.capacity, float)
        }
        return SkoptGP(space, seed=seed, initial=initial_points(knobs, current, caps))
    if name == "random":
        from tuner.strategy.random_search import RandomSearch

        return RandomSearch(space, seed=seed)
    if name in ("optuna_tpe", "optuna_gp"):
        import optuna

        from tuner.strategy.optuna_tpe import OptunaTPE

        sampler: Any = (
            optuna.samplers.TPESampler(seed=seed)
            if name == "optuna_tpe"
            else optuna.samplers.GPSampler(seed=seed)
        )
        return OptunaTPE(space, seed=seed, sampler=sampler)
    raise ValueError(f"unknown contender {name!r}")
