"""Experiment files: the model and its YAML loader; every error names the field and the reason.

An experiment declares applier *instances* under ``appliers:`` (name -> ``{kind, ...options}``)
and knobs that reference one with ``applier:`` and a ``target:`` inside it. The objective and the
constraints are signals (PromQL ``query:`` or built-in ``signal:``); constraints are SLO bounds
(``max:`` or ``min:``), never weighted penalties. Durations accept 500ms, 30s, 5m, 1h.
Freeze windows are documented in :mod:`tuner.freeze`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tuneloop.validation import (
    ConfigError,
    boolean,
    duration,
    fail,
    integer,
    join,
    mapping,
    no_unknown_keys,
    number,
    string,
)
from tuner.appliers.base import KnobClass, Value
from tuner.freeze import FreezeWindow, parse_freeze_window
from tuner.signals.base import BUILTIN_SIGNALS, SignalRef

KnobType = Literal["int", "real", "categorical"]
MODES = ("advisory", "apply")
STRATEGIES = ("skopt-gp", "random", "optuna-tpe")
_WARMUP = {KnobClass.HOT: 10.0, KnobClass.WARM: 60.0, KnobClass.COLD: 180.0}


@dataclass(frozen=True)
class ApplierSpec:
    """One applier instance: its kind and the options its constructor takes."""

    name: str
    kind: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class InitHint:
    """Domain knowledge for initial points: a bandwidth-delay product or a replica's capacity."""

    bdp_bandwidth_bps: float | None = None  # bits per second
    bdp_rtt_s: float | None = None
    bdp_factor: float = 1.0
    capacity: SignalRef | float | None = None  # a number, or a signal measured at start


@dataclass(frozen=True)
class Knob:
    """One tunable value set through an applier target."""

    name: str
    type: KnobType
    applier: str
    target: str
    knob_class: KnobClass
    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] = ()
    log: bool = False
    current: Value | None = None
    init: InitHint | None = None


@dataclass(frozen=True)
class Objective:
    ref: SignalRef
    direction: Literal["minimize", "maximize"] = "minimize"

    def to_loss(self, value: float) -> float:
        """The value the strategy minimises."""
        return -value if self.direction == "maximize" else value


@dataclass(frozen=True)
class Constraint:
    """An SLO: the signal must stay ``<= max`` or ``>= min``."""

    name: str
    ref: SignalRef
    max: float | None = None
    min: float | None = None

    def breached(self, value: float) -> bool:
        return (self.max is not None and value > self.max) or (
            self.min is not None and value < self.min
        )

    def describe(self, value: float) -> str:
        bound = f"<= {self.max:g}" if self.max is not None else f">= {self.min:g}"
        return f"{self.name} = {value:g} (must be {bound})"


@dataclass(frozen=True)
class Measurement:
    warmup_s: Mapping[KnobClass, float]
    window_s: float = 60.0
    repeats: int = 1
    min_request_rate: float = 0.0
    rate: SignalRef = field(default_factory=lambda: SignalRef(signal="request_rate"))
    check_interval_s: float = 10.0


@dataclass(frozen=True)
class Budget:
    trials: int = 30
    wall_time_s: float | None = None


@dataclass(frozen=True)
class Safety:
    max_relative_step: float | None = 0.5
    trust_region: float | None = None  # fraction of each dimension's range around the incumbent
    cooldown_s: float = 0.0
    freeze_windows: tuple[FreezeWindow, ...] = ()


@dataclass(frozen=True)
class StrategyConfig:
    name: str = "skopt-gp"
    seed: int = 0
    initial_points: int = 5
    acq_func: str = "EI"


@dataclass(frozen=True)
class Experiment:
    name: str
    appliers: Mapping[str, ApplierSpec]
    knobs: tuple[Knob, ...]
    objective: Objective
    constraints: tuple[Constraint, ...] = ()
    measurement: Measurement = field(default_factory=lambda: Measurement(warmup_s=_WARMUP))
    budget: Budget = Budget()
    safety: Safety = Safety()
    mode: Literal["advisory", "apply"] = "advisory"
    strategy: StrategyConfig = StrategyConfig()
    signals: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # the YAML text, stored with the experiment so rollback can rebuild it

    def knob(self, name: str) -> Knob:
        for knob in self.knobs:
            if knob.name == name:
                return knob
        raise KeyError(name)


_TOP = {
    "name",
    "appliers",
    "knobs",
    "objective",
    "constraints",
    "measurement",
    "budget",
    "safety",
    "mode",
    "strategy",
    "signals",
}


def signal_ref(value: Mapping[str, Any], field_: str) -> SignalRef:
    """``query:`` (PromQL) or ``signal:`` (a built-in name), exactly one."""
    has_q, has_s = "query" in value, "signal" in value
    if has_q == has_s:
        fail(field_, "needs exactly one of 'query' (PromQL) or 'signal' (a built-in name)")
    if has_q:
        return SignalRef(query=string(value["query"], join(field_, "query")))
    return SignalRef(
        signal=string(value["signal"], join(field_, "signal"), choices=BUILTIN_SIGNALS)
    )


def _knob_value(value: Any, f: str, knob_type: str, cats: tuple[str, ...]) -> Value:
    if knob_type == "categorical":
        return string(str(value) if isinstance(value, int | float) else value, f, choices=cats)
    if knob_type == "int":
        return integer(value, f)
    return number(value, f)


def _init_hint(raw: Any, f: str) -> InitHint:
    raw = mapping(raw, f)
    no_unknown_keys(raw, f, {"bdp", "capacity"})
    if "bdp" in raw:
        bdp = mapping(raw["bdp"], join(f, "bdp"))
        no_unknown_keys(bdp, join(f, "bdp"), {"bandwidth_bps", "rtt", "factor"})
        for key in ("bandwidth_bps", "rtt"):
            if key not in bdp:
                fail(join(join(f, "bdp"), key), "is required")
        return InitHint(
            bdp_bandwidth_bps=number(
                bdp["bandwidth_bps"], join(f, "bdp.bandwidth_bps"), positive=True
            ),
            bdp_rtt_s=duration(bdp["rtt"], join(f, "bdp.rtt")),
            bdp_factor=number(bdp.get("factor", 1.0), join(f, "bdp.factor"), positive=True),
        )
    if "capacity" in raw:
        cap = raw["capacity"]
        if isinstance(cap, Mapping):
            return InitHint(capacity=signal_ref(cap, join(f, "capacity")))
        return InitHint(capacity=number(cap, join(f, "capacity"), positive=True))
    fail(f, "needs 'bdp' or 'capacity'")


def _knob(raw: Any, f: str, appliers: Mapping[str, ApplierSpec]) -> Knob:
    raw = mapping(raw, f)
    allowed = {"name", "type", "applier", "target", "class", "bounds", "values", "log", "current"}
    no_unknown_keys(raw, f, allowed | {"init"})
    for key in ("name", "type", "applier", "target", "class"):
        if key not in raw:
            fail(join(f, key), "is required")
    name = string(raw["name"], join(f, "name"))
    knob_type = string(raw["type"], join(f, "type"), choices=("int", "real", "categorical"))
    applier = string(raw["applier"], join(f, "applier"))
    if applier not in appliers:
        fail(join(f, "applier"), f"names no applier declared under 'appliers' ({applier!r})")
    klass = KnobClass(string(raw["class"], join(f, "class"), choices=tuple(KnobClass)))
    low = high = None
    cats: tuple[str, ...] = ()
    log = boolean(raw.get("log", False), join(f, "log"))
    if knob_type == "categorical":
        values = raw.get("values")
        if not isinstance(values, list) or len(values) < 2:
            fail(join(f, "values"), "a categorical knob needs a list of at least two values")
        cats = tuple(string(str(v), join(join(f, "values"), i)) for i, v in enumerate(values))
        if log:
            fail(join(f, "log"), "a categorical knob cannot be log-scaled")
    else:
        bounds = raw.get("bounds")
        bf = join(f, "bounds")
        if not isinstance(bounds, list) or len(bounds) != 2:
            fail(bf, "must be a list [low, high]")
        conv = integer if knob_type == "int" else number
        low, high = float(conv(bounds[0], join(bf, 0))), float(conv(bounds[1], join(bf, 1)))
        if low >= high:
            fail(bf, f"low must be below high, got [{bounds[0]}, {bounds[1]}]")
        if log and low <= 0:
            fail(bf, "a log-scaled knob needs bounds above 0")
    current = None
    if raw.get("current") is not None:
        current = _knob_value(raw["current"], join(f, "current"), knob_type, cats)
        if low is not None and high is not None and not low <= float(current) <= high:
            fail(join(f, "current"), f"{current!r} lies outside bounds [{low:g}, {high:g}]")
    init = _init_hint(raw["init"], join(f, "init")) if "init" in raw else None
    if init is not None and knob_type == "categorical":
        fail(join(f, "init"), "initial-point hints apply to numeric knobs only")
    return Knob(
        name,
        knob_type,  # type: ignore[arg-type]
        applier,
        string(raw["target"], join(f, "target")),
        klass,
        low,
        high,
        cats,
        log,
        current,
        init,
    )


def _constraint(raw: Any, f: str, index: int) -> Constraint:
    raw = mapping(raw, f)
    no_unknown_keys(raw, f, {"name", "query", "signal", "max", "min"})
    ref = signal_ref(raw, f)
    if ("max" in raw) == ("min" in raw):
        fail(f, "needs exactly one bound: 'max' or 'min'")
    name = string(raw.get("name", ref.signal or f"constraint{index}"), join(f, "name"))
    hi = number(raw["max"], join(f, "max")) if "max" in raw else None
    lo = number(raw["min"], join(f, "min")) if "min" in raw else None
    return Constraint(name, ref, hi, lo)


def _measurement(raw: Any, f: str) -> Measurement:
    raw = mapping(raw, f)
    keys = {"warmup", "window", "repeats", "min_request_rate", "rate", "check_interval"}
    no_unknown_keys(raw, f, keys)
    warm = dict(_WARMUP)
    if "warmup" in raw:
        wf = join(f, "warmup")
        wraw = mapping(raw["warmup"], wf)
        no_unknown_keys(wraw, wf, {str(k) for k in KnobClass})
        for key, val in wraw.items():
            warm[KnobClass(key)] = duration(val, join(wf, key), positive=False)
    window = duration(raw.get("window", 60), join(f, "window"))
    check = duration(raw.get("check_interval", min(10.0, window)), join(f, "check_interval"))
    rate = (
        signal_ref(mapping(raw["rate"], join(f, "rate")), join(f, "rate"))
        if "rate" in raw
        else None
    )
    return Measurement(
        warmup_s=warm,
        window_s=window,
        repeats=integer(raw.get("repeats", 1), join(f, "repeats"), minimum=1),
        min_request_rate=number(
            raw.get("min_request_rate", 0), join(f, "min_request_rate"), minimum=0
        ),
        rate=rate or SignalRef(signal="request_rate"),
        check_interval_s=check,
    )


def _safety(raw: Any, f: str) -> Safety:
    raw = mapping(raw, f)
    no_unknown_keys(raw, f, {"max_relative_step", "trust_region", "cooldown", "freeze_windows"})
    step = raw.get("max_relative_step", 0.5)
    region = raw.get("trust_region")
    windows = raw.get("freeze_windows", [])
    if not isinstance(windows, list):
        fail(join(f, "freeze_windows"), "must be a list")
    return Safety(
        max_relative_step=None
        if step is None
        else number(step, join(f, "max_relative_step"), positive=True),
        trust_region=None
        if region is None
        else number(region, join(f, "trust_region"), positive=True, maximum=1),
        cooldown_s=duration(raw.get("cooldown", 0), join(f, "cooldown"), positive=False),
        freeze_windows=tuple(
            parse_freeze_window(w, join(join(f, "freeze_windows"), i))
            for i, w in enumerate(windows)
        ),
    )


def _strategy(raw: Any, f: str) -> StrategyConfig:
    raw = mapping(raw, f)
    no_unknown_keys(raw, f, {"name", "seed", "initial_points", "acq_func"})
    return StrategyConfig(
        name=string(raw.get("name", "skopt-gp"), join(f, "name"), choices=STRATEGIES),
        seed=integer(raw.get("seed", 0), join(f, "seed"), minimum=0),
        initial_points=integer(raw.get("initial_points", 5), join(f, "initial_points"), minimum=1),
        acq_func=string(
            raw.get("acq_func", "EI"),
            join(f, "acq_func"),
            choices=("gp_hedge", "EI", "PI", "LCB"),
        ),
    )


def parse_experiment(data: Any, source: str = "") -> Experiment:
    """Validate a parsed YAML document into an :class:`Experiment`."""
    data = mapping(data, "")
    no_unknown_keys(data, "", _TOP)
    for key in ("name", "appliers", "knobs", "objective"):
        if key not in data:
            fail(key, "is required")
    name = string(data["name"], "name")
    appliers: dict[str, ApplierSpec] = {}
    for aname, araw in mapping(data["appliers"], "appliers").items():
        af = join("appliers", str(aname))
        araw = mapping(araw, af)
        if "kind" not in araw:
            fail(join(af, "kind"), "is required")
        opts = {k: v for k, v in araw.items() if k != "kind"}
        appliers[str(aname)] = ApplierSpec(str(aname), string(araw["kind"], join(af, "kind")), opts)
    if not appliers:
        fail("appliers", "declare at least one applier")
    raw_knobs = data["knobs"]
    if not isinstance(raw_knobs, list) or not raw_knobs:
        fail("knobs", "must be a non-empty list")
    knobs = tuple(_knob(k, join("knobs", i), appliers) for i, k in enumerate(raw_knobs))
    seen: set[str] = set()
    targets: set[tuple[str, str]] = set()
    for i, knob in enumerate(knobs):
        if knob.name in seen:
            fail(join(join("knobs", i), "name"), f"duplicate knob name {knob.name!r}")
        if (knob.applier, knob.target) in targets:
            fail(
                join(join("knobs", i), "target"), f"{knob.target!r} is already set by another knob"
            )
        seen.add(knob.name)
        targets.add((knob.applier, knob.target))
    obj = mapping(data["objective"], "objective")
    no_unknown_keys(obj, "objective", {"query", "signal", "direction"})
    direction = string(
        obj.get("direction", "minimize"), "objective.direction", choices=("minimize", "maximize")
    )
    raw_cons = data.get("constraints", [])
    if not isinstance(raw_cons, list):
        fail("constraints", "must be a list")
    constraints = tuple(_constraint(c, join("constraints", i), i) for i, c in enumerate(raw_cons))
    budget = mapping(data.get("budget", {}), "budget")
    no_unknown_keys(budget, "budget", {"trials", "wall_time"})
    wall = budget.get("wall_time")
    signals = mapping(data.get("signals", {}), "signals")
    no_unknown_keys(signals, "signals", {"prometheus", "timeout", "retries"})
    signals = dict(signals)
    if "prometheus" in signals:
        signals["prometheus"] = string(signals["prometheus"], "signals.prometheus")
    signals["timeout"] = duration(signals.get("timeout", 5.0), "signals.timeout")
    signals["retries"] = integer(
        signals.get("retries", 2), "signals.retries", minimum=0, maximum=10
    )
    return Experiment(
        name=name,
        appliers=appliers,
        knobs=knobs,
        objective=Objective(signal_ref(obj, "objective"), direction),  # type: ignore[arg-type]
        constraints=constraints,
        measurement=_measurement(data.get("measurement", {}), "measurement"),
        budget=Budget(
            trials=integer(budget.get("trials", 30), "budget.trials", minimum=1),
            wall_time_s=None if wall is None else duration(wall, "budget.wall_time"),
        ),
        safety=_safety(data.get("safety", {}), "safety"),
        mode=string(data.get("mode", "advisory"), "mode", choices=MODES),  # type: ignore[arg-type]
        strategy=_strategy(data.get("strategy", {}), "strategy"),
        signals=dict(signals),
        source=source,
    )


def loads_experiment(text: str, origin: str = "<string>") -> Experiment:
    """Parse YAML text; a syntax error names the file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(origin, f"not valid YAML: {exc}") from None
    return parse_experiment(data, source=text)


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read: {exc.strerror or exc}") from None
    return loads_experiment(text, str(p))


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
