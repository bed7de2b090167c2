"""The search space and domain-informed initial points.

Knobs become scikit-optimize dimensions (``Integer``, ``Real``, ``Categorical``; log-scaled knobs
use ``prior="log-uniform"``). Domain knowledge enters only as initial points, in this order:

1. the current configuration (what the appliers read, or the knob's ``current:``). A value the
   system does not set (a sysctl absent from the node-tuning ConfigMap reads as empty) takes the
   knob's ``current:`` when given, else its lower bound (the conservative end; for buffers, near
   the kernel's default) or its first category;
2. a *domain* point: TCP buffer knobs with an ``init.bdp`` hint at ``factor x bandwidth x RTT / 8``
   bytes, and balancer weights with an ``init.capacity`` hint proportional to each replica's
   capacity (scaled so the largest weight is the largest of the current weights, or the upper
   bound), every other knob at its current value;
3. the same domain point with the BDP doubled (Linux halves socket buffers for overhead), only when
   there are BDP knobs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from skopt.space import Categorical, Dimension, Integer, Real

from tuner.appliers.base import Value
from tuner.spec import Knob
from tuner.strategy.base import Params


class Space:
    """Converts between named params and skopt points."""

    def __init__(self, knobs: Sequence[Knob]) -> None:
        self.knobs = tuple(knobs)
        self.names = [k.name for k in self.knobs]

    def dimensions(self) -> list[Dimension]:
        dims: list[Dimension] = []
        for k in self.knobs:
            prior = "log-uniform" if k.log else "uniform"
            if k.type == "categorical":
                dims.append(Categorical(list(k.categories), name=k.name))
            elif k.type == "int":
                assert k.low is not None and k.high is not None
                dims.append(Integer(int(k.low), int(k.high), prior=prior, name=k.name))
            else:
                assert k.low is not None and k.high is not None
                dims.append(Real(k.low, k.high, prior=prior, name=k.name))
        return dims

    def to_point(self, params: Mapping[str, Any]) -> list[Any]:
        """Params as a skopt point, clipped into bounds and typed per dimension."""
        point: list[Any] = []
        for k in self.knobs:
            if k.name not in params:
                raise KeyError(f"params lack knob {k.name!r}")
            point.append(coerce(k, params[k.name]))
        return point

    def to_params(self, point: Sequence[Any]) -> Params:
        return {k.name: coerce(k, v) for k, v in zip(self.knobs, point, strict=True)}


def coerce(knob: Knob, value: Any) -> Value:
    """A value of the knob's type, inside its bounds."""
    if knob.type == "categorical":
        text = str(value)
        if text not in knob.categories:
            raise ValueError(f"{knob.name}: {text!r} is not one of {', '.join(knob.categories)}")
        return text
    assert knob.low is not None and knob.high is not None
    x = min(max(float(value), knob.low), knob.high)
    return round(x) if knob.type == "int" else x


def _present(knob: Knob, value: Any) -> Any:
    """``value``, or the stand-in for a knob the system leaves unset (see the module)."""
    if value is not None and str(value).strip() != "":
        return value
    if knob.current is not None:
        return knob.current
    return knob.categories[0] if knob.type == "categorical" else knob.low


def bdp_bytes(bandwidth_bps: float, rtt_s: float, factor: float = 1.0) -> float:
    """Bandwidth-delay product in bytes."""
    return factor * bandwidth_bps * rtt_s / 8.0


def capacity_weights(
    capacities: Mapping[str, float],
    low: float,
    high: float,
    top: float | None = None,
    *,
    integer: bool = True,
) -> dict[str, float]:
    """Weights proportional to capacity; the largest becomes ``top`` (or ``high``).

    Integer weights (what HAProxy and nginx take) are rounded inside ``[ceil(low), floor(high)]``;
    real-valued weights keep their exact proportions, clipped to ``[low, high]``.
    """
    if not capacities:
        return {}
    biggest = max(capacities.values())
    if biggest <= 0 or not math.isfinite(biggest):
        raise ValueError("capacities must include a positive finite value")
    scale = min(top if top is not None else high, high) / biggest
    if not integer:
        return {name: min(max(max(c, 0.0) * scale, low), high) for name, c in capacities.items()}
    return {
        name: int(min(max(round(max(c, 0.0) * scale), math.ceil(low)), math.floor(high)))
        for name, c in capacities.items()
    }


def initial_points(
    knobs: Sequence[Knob], current: Mapping[str, Value], capacities: Mapping[str, float]
) -> list[Params]:
    """Current configuration first, then the domain points described in the module docstring."""
    base = {k.name: coerce(k, _present(k, current.get(k.name))) for k in knobs}
    points: list[Params] = [base]
    bdp = [k for k in knobs if k.init is not None and k.init.bdp_bandwidth_bps is not None]
    weight_knobs = [k for k in knobs if k.name in capacities]
    if not bdp and not weight_knobs:
        return points
    domain = dict(base)
    groups: dict[str, list[Knob]] = {}
    for k in weight_knobs:
        groups.setdefault(k.applier, []).append(k)
    for group in groups.values():
        first = group[0]
        assert first.low is not None and first.high is not None
        top = max(float(base[k.name]) for k in group)
        weights = capacity_weights(
            {k.name: capacities[k.name] for k in group},
            first.low,
            first.high,
            top or None,
            integer=all(k.type == "int" for k in group),
        )
        for k in group:
            domain[k.name] = coerce(k, weights[k.name])
    for factor in (1.0, 2.0) if bdp else (1.0,):
        point = dict(domain)
        for k in bdp:
            assert k.init is not None and k.init.bdp_bandwidth_bps is not None
            size = bdp_bytes(k.init.bdp_bandwidth_bps, k.init.bdp_rtt_s or 0.0, k.init.bdp_factor)
            point[k.name] = coerce(k, size * factor)
        if point not in points:
            points.append(point)
    return points
