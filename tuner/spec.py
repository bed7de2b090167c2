"""Experiment files: the declarations, their cross-field checks and the loaders.

An experiment declares applier *instances* under ``appliers:`` (name -> ``{kind, ...options}``)
and knobs that reference one with ``applier:`` and a ``target:`` inside it. The objective and the
constraints are signals (PromQL ``query:`` or built-in ``signal:``); constraints are SLO bounds
(``max:`` or ``min:``), never weighted penalties. Durations accept 500ms, 30s, 5m, 1h.
Freeze windows are documented in :mod:`tuner.freeze`.

Each dataclass below is also the file's schema (:mod:`tuneloop.schema`): a field's default, help,
bounds and file key are written once and drive parsing, errors and ``tuneloop schema experiment``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from tuneloop.config_file import parse_mapping, read_text
from tuneloop.schema import Scope, parse, setting
from tuneloop.validation import fail, join
from tuner import spec_fields as sf
from tuner.appliers.base import KnobClass, Value
from tuner.freeze import FreezeWindow
from tuner.signals.base import SignalRef
from tuner.signals.settings import SignalSettings, parse_signal_settings, signal_settings_schema
from tuner.spec_fields import signal_ref as signal_ref  # public since the first version

KnobType = Literal["int", "real", "categorical"]
MODES = ("advisory", "apply")
STRATEGIES = ("skopt-gp", "random", "optuna-tpe")
WARMUP = {KnobClass.HOT: 10.0, KnobClass.WARM: 60.0, KnobClass.COLD: 180.0}
CHECK_INTERVAL = 10.0


@dataclass(frozen=True)
class ApplierSpec:
    """One applier instance: its kind and the options its constructor takes."""

    name: str = setting(kind="key", help="The instance's name (its key under appliers).")
    kind: str = setting(help="haproxy, nginx, k8s-scale, k8s-hpa, k8s-env, k8s-configmap, ...")
    options: Mapping[str, Any] = setting(kind="rest", help="The kind's own options.")


@dataclass(frozen=True)
class InitHint:
    """Domain knowledge for initial points: a bandwidth-delay product or a replica's capacity."""

    bdp_bandwidth_bps: float | None = setting(
        None, group="bdp", key="bandwidth_bps", positive=True, unit="bits per second",
        help="Path bandwidth of the bandwidth-delay product.",
    )  # fmt: skip
    bdp_rtt_s: float | None = setting(
        None, group="bdp", key="rtt", kind="duration", help="Round-trip time of the path."
    )
    bdp_factor: float = setting(
        1.0, group="bdp", key="factor", positive=True, help="Multiplier on the product."
    )
    capacity: SignalRef | float | None = setting(
        None, parse=sf.capacity, schema=sf.capacity_schema,
        help="A replica's capacity (a number, or a signal measured at start); weights start "
        "proportional to it.",
    )  # fmt: skip

    GROUP_HELP: ClassVar[dict[str, str]] = {
        "bdp": "Bandwidth-delay product: buffers start at bandwidth x RTT / 8 x factor bytes."
    }
    SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {
        "oneOf": [{"required": ["bdp"]}, {"required": ["capacity"]}],
        "allOf": [{"properties": {"bdp": {"required": ["bandwidth_bps", "rtt"]}}}],
    }

    def check_config(self, field: str) -> None:
        bdp = self.bdp_bandwidth_bps is not None or self.bdp_rtt_s is not None
        if bdp == (self.capacity is not None):
            fail(field, "needs exactly one of 'bdp' or 'capacity'")
        if self.bdp_bandwidth_bps is None and bdp:
            fail(join(field, "bdp.bandwidth_bps"), "is required")
        if self.bdp_rtt_s is None and bdp:
            fail(join(field, "bdp.rtt"), "is required")


@dataclass(frozen=True)
class Knob:
    """One tunable value set through an applier target."""

    name: str = setting(help="The knob's unique name (the parameter's name in trials).")
    type: KnobType = setting(help="int, real or categorical.")
    applier: str = setting(help="The applier instance (a key under appliers) that sets it.")
    target: str = setting(help="What the applier sets (a server, namespace/name:key, ...).")
    knob_class: KnobClass = setting(
        key="class", help="How disruptive a change is; sets the warm-up before measuring."
    )
    low: float | None = setting(
        None, key="bounds", parse=sf.knob_bounds, schema=sf.bounds_schema,
        help="[low, high] of a numeric knob, inclusive.",
    )  # fmt: skip
    high: float | None = None
    categories: tuple[str, ...] = setting(
        (), key="values", parse=sf.knob_values, schema=sf.values_schema,
        help="The choices of a categorical knob (at least two).",
    )  # fmt: skip
    log: bool = setting(False, help="Search on a log scale (numeric bounds above 0).")
    current: Value | None = setting(
        None, parse=sf.current_value, schema=sf.current_schema,
        help="The value in place now (read from the applier when left out).",
    )  # fmt: skip
    init: InitHint | None = setting(None, help="A hint for the initial points (numeric knobs).")

    SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"type": {"const": "categorical"}}},
        "then": {"required": ["values"]},
        "else": {"required": ["bounds"]},
    }

    def check_config(self, field: str) -> None:
        if self.type == "categorical":
            if not self.categories:
                fail(
                    join(field, "values"), "a categorical knob needs a list of at least two values"
                )
            if self.log:
                fail(join(field, "log"), "a categorical knob cannot be log-scaled")
            if self.init is not None:
                fail(join(field, "init"), "initial-point hints apply to numeric knobs only")
            return
        if self.low is None or self.high is None:
            fail(join(field, "bounds"), "must be a list [low, high]")
        if self.log and self.low <= 0:
            fail(join(field, "bounds"), "a log-scaled knob needs bounds above 0")
        if self.current is not None and not self.low <= float(self.current) <= self.high:
            fail(
                join(field, "current"),
                f"{self.current!r} lies outside bounds [{self.low:g}, {self.high:g}]",
            )


@dataclass(frozen=True)
class Objective:
    """What the tuner optimises: one signal, minimised or maximised."""

    ref: SignalRef = setting(
        kind="inline", keys=sf.SIGNAL_KEYS, parse=sf.inline_signal,
        schema=sf.signal_properties, help="The signal.",
    )  # fmt: skip
    direction: Literal["minimize", "maximize"] = setting("minimize", help="Which way is better.")

    SCHEMA_EXTRA: ClassVar[dict[str, Any]] = sf.ONE_SIGNAL

    def to_loss(self, value: float) -> float:
        """The value the strategy minimises."""
        return -value if self.direction == "maximize" else value


def _constraint_name(scope: Scope) -> str:
    ref: SignalRef = scope.values["ref"]
    return ref.signal or f"constraint{scope.key}"


@dataclass(frozen=True)
class Constraint:
    """An SLO: the signal must stay ``<= max`` or ``>= min``."""

    name: str = setting(
        derive=_constraint_name, default_text="the signal's name, or constraintN",
        help="The constraint's name in reports.",
    )  # fmt: skip
    ref: SignalRef = setting(
        kind="inline", keys=sf.SIGNAL_KEYS, parse=sf.inline_signal,
        schema=sf.signal_properties, help="The signal.",
    )  # fmt: skip
    max: float | None = setting(None, help="Upper bound: breached above it.")
    min: float | None = setting(None, help="Lower bound: breached below it.")

    SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {
        "allOf": [sf.ONE_SIGNAL, {"oneOf": [{"required": ["max"]}, {"required": ["min"]}]}]
    }

    def check_config(self, field: str) -> None:
        if (self.max is None) == (self.min is None):
            fail(field, "needs exactly one bound: 'max' or 'min'")

    def breached(self, value: float) -> bool:
        return (self.max is not None and value > self.max) or (
            self.min is not None and value < self.min
        )

    def describe(self, value: float) -> str:
        bound = f"<= {self.max:g}" if self.max is not None else f">= {self.min:g}"
        return f"{self.name} = {value:g} (must be {bound})"


@dataclass(frozen=True)
class Measurement:
    """How each trial is measured: warm-up per knob class, window, repeats and validity."""

    warmup_s: Mapping[KnobClass, float] = setting(
        factory=lambda: dict(WARMUP), key="warmup", kind="duration", positive=False,
        help="Wait after a change before measuring, per knob class.",
    )  # fmt: skip
    window_s: float = setting(60.0, key="window", kind="duration", help="Measurement window.")
    repeats: int = setting(1, minimum=1, help="Windows measured per trial.")
    min_request_rate: float = setting(
        0.0, minimum=0, unit="per second", help="Below this rate a measurement is invalid."
    )
    rate: SignalRef = setting(
        factory=lambda: SignalRef(signal="request_rate"), parse=sf.signal_mapping,
        schema=sf.signal_object_schema, default_text="{signal: request_rate}",
        help="The rate compared with min_request_rate.",
    )  # fmt: skip
    check_interval_s: float = setting(
        CHECK_INTERVAL, key="check_interval", kind="duration",
        derive=lambda s: min(CHECK_INTERVAL, s.values["window_s"]),
        default_text="the smaller of 10s and the window",
        help="How often constraints are read during a trial.",
    )  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """When the experiment stops."""

    trials: int = setting(30, minimum=1, help="Number of trials.")
    wall_time_s: float | None = setting(
        None, key="wall_time", kind="duration", help="Stop after this long (no limit if unset)."
    )


@dataclass(frozen=True)
class Safety:
    """Limits on every change: step size, trust region, cooldown and freeze windows."""

    max_relative_step: float | None = setting(
        0.5, positive=True, help="Largest change per trial as a fraction of the current value."
    )
    trust_region: float | None = setting(
        None, positive=True, maximum=1,
        help="Fraction of each dimension's range searched around the incumbent.",
    )  # fmt: skip
    cooldown_s: float = setting(
        0.0, key="cooldown", kind="duration", positive=False, help="Wait between trials."
    )
    freeze_windows: tuple[FreezeWindow, ...] = setting(
        (), parse=sf.freeze_windows, schema=sf.freeze_windows_schema,
        help="Times (UTC) when nothing is changed.",
    )  # fmt: skip


@dataclass(frozen=True)
class StrategyConfig:
    """The search strategy behind the ask/tell seam."""

    name: str = setting("skopt-gp", choices=STRATEGIES, help="The strategy.")
    seed: int = setting(0, minimum=0, help="Random seed.")
    initial_points: int = setting(5, minimum=1, help="Points before the model is used.")
    acq_func: str = setting(
        "EI", choices=("gp_hedge", "EI", "PI", "LCB"), help="Acquisition function (skopt-gp)."
    )


def _signals(value: Any, field: str, scope: Scope) -> SignalSettings:
    return parse_signal_settings(value, field)


@dataclass(frozen=True)
class Experiment:
    """A tuning experiment: appliers, knobs, objective, SLO constraints and limits."""

    name: str = setting(help="The experiment's name (the key of its trials in the store).")
    appliers: Mapping[str, ApplierSpec] = setting(min_items=1, help="Applier instances by name.")
    knobs: tuple[Knob, ...] = setting(min_items=1, help="What is tuned.")
    objective: Objective = setting(help="What is optimised.")
    constraints: tuple[Constraint, ...] = setting((), help="SLO bounds every trial must keep.")
    measurement: Measurement = setting(factory=Measurement, help="How trials are measured.")
    budget: Budget = setting(Budget(), help="When to stop.")
    safety: Safety = setting(Safety(), help="Limits on every change.")
    mode: Literal["advisory", "apply"] = setting(
        "advisory", help="advisory measures and recommends; apply runs trials and keeps the best."
    )
    strategy: StrategyConfig = setting(StrategyConfig(), help="The search strategy.")
    signals: SignalSettings = setting(
        factory=SignalSettings, parse=_signals, schema=signal_settings_schema,
        derive=lambda s: _signals({}, "signals", s), help="Where the signals come from.",
    )  # fmt: skip
    source: str = ""  # the YAML text, stored with the experiment so rollback can rebuild it

    def knob(self, name: str) -> Knob:
        for knob in self.knobs:
            if knob.name == name:
                return knob
        raise KeyError(name)

    def check_config(self, field: str) -> None:
        seen: set[str] = set()
        targets: set[tuple[str, str]] = set()
        for i, knob in enumerate(self.knobs):
            f = join("knobs", i)
            if knob.applier not in self.appliers:
                msg = f"names no applier declared under 'appliers' ({knob.applier!r})"
                fail(join(f, "applier"), msg)
            if knob.name in seen:
                fail(join(f, "name"), f"duplicate knob name {knob.name!r}")
            if (knob.applier, knob.target) in targets:
                fail(join(f, "target"), f"{knob.target!r} is already set by another knob")
            seen.add(knob.name)
            targets.add((knob.applier, knob.target))


def parse_experiment(data: Any, source: str = "") -> Experiment:
    """Validate a parsed YAML document into an :class:`Experiment`."""
    return parse(Experiment, data, internal={"source": source})


def loads_experiment(text: str, origin: str = "<string>") -> Experiment:
    """Parse YAML text; a syntax error names the file."""
    return parse_experiment(parse_mapping(text, origin), source=text)


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file."""
    return loads_experiment(read_text(path), str(path))


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
