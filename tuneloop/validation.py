"""Validation helpers for YAML/JSON configuration: every error names the field and the reason.

Used by the declarations in :mod:`tuneloop.schema` (agent, controller, experiment and node-tuning
files) and by hand-written parsers, so a mistake reads the same everywhere:
``collectors.gpu.interval: must be a positive number, got -1``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(ValueError):
    """A configuration value is missing or wrong; ``field`` is its dotted path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def fail(field: str, reason: str) -> NoReturn:
    """Raise a ConfigError for ``field``."""
    raise ConfigError(field, reason)


def join(prefix: str, key: str | int) -> str:
    """Dotted path of a child field (``a.b``, ``a[3]``)."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    """``value`` as a mapping, or an error."""
    if not isinstance(value, Mapping):
        fail(field, f"must be a mapping, got {type(value).__name__}")
    return value


def no_unknown_keys(value: Mapping[str, Any], field: str, allowed: set[str]) -> None:
    """Reject keys outside ``allowed`` (typos must not pass silently)."""
    unknown = sorted(set(value) - allowed)
    if unknown:
        fail(join(field, unknown[0]), f"unknown field (allowed: {', '.join(sorted(allowed))})")


def string(value: Any, field: str, *, choices: tuple[str, ...] = ()) -> str:
    """A non-empty string, optionally one of ``choices``."""
    if not isinstance(value, str) or not value.strip():
        fail(field, f"must be a non-empty string, got {value!r}")
    if choices and value not in choices:
        fail(field, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def number(
    value: Any,
    field: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> float:
    """A finite number within bounds (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        fail(field, f"must be a finite number, got {value!r}")
    if positive and value <= 0:
        fail(field, f"must be a positive number, got {value!r}")
    if minimum is not None and value < minimum:
        fail(field, f"must be >= {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        fail(field, f"must be <= {maximum:g}, got {value!r}")
    return float(value)


def integer(
    value: Any, field: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An integer within bounds (booleans and floats with a fraction are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            fail(field, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        fail(field, f"must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        fail(field, f"must be <= {maximum}, got {value!r}")
    return int(value)


def boolean(value: Any, field: str) -> bool:
    """A YAML boolean."""
    if not isinstance(value, bool):
        fail(field, f"must be true or false, got {value!r}")
    return value


def duration(value: Any, field: str, *, positive: bool = True) -> float:
    """Seconds from a number or a string like ``500ms``, ``30s``, ``5m``, ``1h``."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            fail(field, f"must be a duration like 500ms, 30s, 5m or 1h, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        seconds = number(value, field)
    if positive and seconds <= 0:
        fail(field, f"must be a positive duration, got {value!r}")
    if seconds < 0:
        fail(field, f"must not be negative, got {value!r}")
    return seconds
