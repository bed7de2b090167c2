"""The node-tuning desired-state file declared once: ``{generation: N, sysctls: {key: value}}``.

It lives in the core so that ``tuneloop schema node-tuning`` documents it without the tuner
importing the agent; :mod:`agent.nodetune.desired` parses it with ``collect=True`` (every problem
at once) and checks each sysctl against its allowlist, which only the agent knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuneloop.schema import Scope, setting
from tuneloop.validation import fail

SYSCTL_KEY = r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$"


def _generation(value: Any, field: str, _scope: Scope) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        fail(field, f"must be a non-negative integer, got {value!r}")
    return value


def _sysctls(value: Any, field: str, _scope: Scope) -> dict[str, Any]:
    # An empty mapping is valid: nothing is desired yet, so nothing changes.
    if not isinstance(value, Mapping):
        fail(field, f"must be a mapping of key to value, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _sysctls_schema() -> dict[str, Any]:
    value = {"type": ["string", "integer"]}
    return {
        "type": "object",
        "propertyNames": {"pattern": SYSCTL_KEY},
        "additionalProperties": value,
    }


@dataclass(frozen=True)
class DesiredState:
    """Desired node sysctls, applied by every agent within its allowlist."""

    generation: int = setting(
        parse=_generation,
        schema=lambda: {"type": "integer", "minimum": 0},
        help="Bumped by the tuner on every change; agents report the generation they applied.",
    )
    sysctls: Mapping[str, Any] = setting(
        parse=_sysctls,
        schema=_sysctls_schema,
        missing="must be a mapping of key to value, got None",
        help="sysctl key to value (text or integer); an empty mapping changes nothing.",
    )
