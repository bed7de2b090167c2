"""Parse hooks and schema fragments for the irregular parts of an experiment file.

Signals are written inline (``query:`` or ``signal:`` beside ``max:``) or as a small mapping
(``rate: {signal: ...}``); numeric knobs take ``bounds: [low, high]`` that fill two fields; a
knob's ``values`` and ``current`` depend on its ``type``; freeze windows keep their own parser
(:mod:`tuner.freeze`). Each hook raises ConfigError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuneloop.schema import Scope, Spread
from tuneloop.validation import fail, integer, join, mapping, number, string
from tuner.appliers.base import Value
from tuner.freeze import DAYS, FreezeWindow, parse_freeze_window
from tuner.signals.base import BUILTIN_SIGNALS, SignalRef

SIGNAL_KEYS = ("query", "signal")
ONE_SIGNAL = {"oneOf": [{"required": ["query"]}, {"required": ["signal"]}]}


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


def inline_signal(value: Mapping[str, Any], field_: str, _scope: Scope) -> SignalRef:
    return signal_ref(value, field_)


def signal_mapping(value: Any, field_: str, _scope: Scope) -> SignalRef:
    """A signal written as its own mapping (``rate: {signal: request_rate}``)."""
    value = mapping(value, field_)
    unknown = sorted(set(value) - set(SIGNAL_KEYS))
    if unknown:
        fail(join(field_, unknown[0]), "unknown field (allowed: query, signal)")
    return signal_ref(value, field_)


def signal_properties() -> dict[str, Any]:
    return {
        "query": {
            "description": "PromQL returning one number ($window is the measurement window).",
            "type": "string",
            "minLength": 1,
        },
        "signal": {
            "description": "A built-in signal every backend maps to its own query.",
            "type": "string",
            "enum": list(BUILTIN_SIGNALS),
        },
    }


def signal_object_schema() -> dict[str, Any]:
    props = signal_properties()
    return {"type": "object", "properties": props, "additionalProperties": False, **ONE_SIGNAL}


def capacity(value: Any, field_: str, _scope: Scope) -> SignalRef | float:
    """A replica's capacity: a positive number, or a signal measured at start."""
    if isinstance(value, Mapping):
        return signal_mapping(value, field_, _scope)
    return number(value, field_, positive=True)


def capacity_schema() -> dict[str, Any]:
    return {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, signal_object_schema()]}


def knob_bounds(value: Any, field_: str, scope: Scope) -> Spread:
    """``[low, high]`` of a numeric knob into ``low`` and ``high``."""
    if scope.values.get("type") == "categorical":
        fail(field_, "a categorical knob takes 'values', not bounds")
    if not isinstance(value, list) or len(value) != 2:
        fail(field_, "must be a list [low, high]")
    conv = integer if scope.values.get("type") == "int" else number
    low, high = float(conv(value[0], join(field_, 0))), float(conv(value[1], join(field_, 1)))
    if low >= high:
        fail(field_, f"low must be below high, got [{value[0]}, {value[1]}]")
    return Spread({"low": low, "high": high})


def bounds_schema() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}


def knob_values(value: Any, field_: str, scope: Scope) -> tuple[str, ...]:
    """The choices of a categorical knob."""
    if scope.values.get("type") != "categorical":
        fail(field_, "only a categorical knob takes values")
    if not isinstance(value, list) or len(value) < 2:
        fail(field_, "a categorical knob needs a list of at least two values")
    return tuple(string(str(v), join(field_, i)) for i, v in enumerate(value))


def values_schema() -> dict[str, Any]:
    scalar = {"type": ["string", "number"]}
    return {"type": "array", "items": scalar, "minItems": 2}


def knob_value(value: Any, field_: str, knob_type: str, cats: tuple[str, ...]) -> Value:
    """A value of a knob of ``knob_type`` (categorical values compare as text)."""
    if knob_type == "categorical":
        return string(str(value) if isinstance(value, int | float) else value, field_, choices=cats)
    if knob_type == "int":
        return integer(value, field_)
    return number(value, field_)


def current_value(value: Any, field_: str, scope: Scope) -> Value | None:
    if value is None:
        return None
    cats = scope.values.get("categories", ())
    return knob_value(value, field_, str(scope.values.get("type")), cats)


def current_schema() -> dict[str, Any]:
    return {"type": ["number", "string", "null"]}


def freeze_windows(value: Any, field_: str, _scope: Scope) -> tuple[FreezeWindow, ...]:
    if not isinstance(value, list):
        fail(field_, "must be a list")
    return tuple(parse_freeze_window(w, join(field_, i)) for i, w in enumerate(value))


def freeze_windows_schema() -> dict[str, Any]:
    when = {"type": "string", "minLength": 1}
    window = {
        "type": "object",
        "description": "Weekly (days, HH:MM start and end, UTC) or absolute (ISO 8601 start, end).",
        "properties": {
            "days": {
                "description": "Days of a weekly window (leave out for an absolute one).",
                "type": "array",
                "items": {"enum": list(DAYS)},
                "minItems": 1,
            },
            "start": {"description": "HH:MM (weekly) or an ISO 8601 time (absolute).", **when},
            "end": {"description": "HH:MM, at or before start: the next day; or ISO 8601.", **when},
        },
        "required": ["start", "end"],
        "additionalProperties": False,
    }
    return {"type": "array", "items": window}
