"""What the strategy learns: finished trials as results, replayed on start; its first points.

A resumed run (or a controller round) builds a fresh strategy and replays every measured trial
of the experiment into it, so the model is the same as if the tuner had never stopped. Strategy
trials, incumbent and challenger re-measurements, advisory baselines and final applies all
count: each is a measurement of a configuration. Trials rolled back before any measurement teach
nothing and are left out.
"""

from __future__ import annotations

from collections.abc import Callable

from tuner.signals.base import SignalError, SignalRef, Signals
from tuner.space import Space, initial_points
from tuner.spec import Experiment
from tuner.store import Trial, TrialStore
from tuner.strategy.base import Params, Strategy, TrialResult
from tuner.strategy.registry import build_strategy
from tuner.trial_state import TrialKind, TrialState

MEASURED_KINDS = frozenset(
    {
        TrialKind.TRIAL,
        TrialKind.INCUMBENT,
        TrialKind.CHALLENGER,
        TrialKind.BASELINE,
        TrialKind.FINAL,
    }
)


def result_of(t: Trial, loss: Callable[[float], float]) -> TrialResult | None:
    """What the strategy learns from a finished trial (None: nothing)."""
    if t.state == TrialState.DONE and t.objective is not None:
        return TrialResult(loss(t.objective))
    if t.state == TrialState.INFEASIBLE:
        return TrialResult(None, feasible=False)
    if t.state == TrialState.INVALID:
        return TrialResult(None, valid=False)
    return None  # rolled back before any measurement: nothing learned


def history(store: TrialStore, exp: Experiment) -> list[tuple[Params, TrialResult]]:
    """Every measured trial of ``exp``, oldest first, as (params, result)."""
    out: list[tuple[Params, TrialResult]] = []
    for t in store.trials(exp.name):
        result = result_of(t, exp.objective.to_loss) if t.kind in MEASURED_KINDS else None
        if result is not None:
            out.append((t.params, result))
    return out


def capacities(exp: Experiment, signals: Signals) -> dict[str, float]:
    """Each knob's capacity hint: a number, or a signal read now (skipped when it fails)."""
    caps: dict[str, float] = {}
    for k in exp.knobs:
        if k.init is None or k.init.capacity is None:
            continue
        if isinstance(k.init.capacity, SignalRef):
            try:
                value = signals.value(k.init.capacity, exp.measurement.window_s)
            except SignalError:
                value = None
            if value is not None and value > 0:
                caps[k.name] = value
        else:
            caps[k.name] = float(k.init.capacity)
    return caps


def start_strategy(exp: Experiment, space: Space, current: Params, signals: Signals) -> Strategy:
    """The experiment's strategy, starting from the current configuration and the hints."""
    points = initial_points(exp.knobs, current, capacities(exp, signals))
    return build_strategy(exp.strategy, space, points)
