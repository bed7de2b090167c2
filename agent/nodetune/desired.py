"""The desired-state file: ``{"generation": N, "sysctls": {key: value, ...}}`` in YAML or JSON.

Everything is validated before anything is written: the file must parse, the generation must be
a non-negative integer, and every key must be on the allowlist with a value inside its bounds.
All problems are reported together, each naming its field, so one edit fixes a bad ConfigMap.
The file's shape is declared in :mod:`tuneloop.node_tuning_settings`; the allowlist is checked here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.nodetune.allowlist import SysctlValueError, normalise
from tuneloop.config_file import read_mapping
from tuneloop.node_tuning_settings import DesiredState
from tuneloop.schema import ConfigErrors, parse
from tuneloop.validation import ConfigError


class DesiredStateError(ValueError):
    """The desired state is malformed or not allowed; the message lists every problem."""


@dataclass(frozen=True)
class Desired:
    """A validated desired state: canonical values per allowed key."""

    generation: int
    sysctls: dict[str, str]


def parse_desired(data: Any, source: str = "desired state") -> Desired:
    """Validate a parsed document; raise DesiredStateError naming ``source`` and each field."""
    if not isinstance(data, Mapping):
        raise DesiredStateError(f"{source}: must be a mapping with generation and sysctls")
    problems: list[str] = []
    state: DesiredState | None = None
    try:
        state = parse(DesiredState, data, collect=True)
    except ConfigErrors as exc:
        problems.extend(str(e) for e in exc.errors)
    raw = data.get("sysctls")
    sysctls: dict[str, str] = {}
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            try:
                sysctls[str(key)] = normalise(key, value)
            except SysctlValueError as exc:
                problems.append(f"sysctls.{exc}")
    if problems or state is None:
        raise DesiredStateError(f"{source}: " + "; ".join(problems))
    return Desired(state.generation, sysctls)


def load_desired(path: Path) -> Desired:
    """Read and validate a desired-state file (``.json`` or YAML: YAML is a superset of JSON)."""
    try:
        data = read_mapping(path, syntax="YAML or JSON")
    except ConfigError as exc:
        raise DesiredStateError(str(exc)) from exc
    return parse_desired(data, str(path))


def content_hash(path: Path) -> str:
    """SHA-256 of the file behind ``path`` (symlinks resolved), for change detection."""
    return hashlib.sha256(path.resolve().read_bytes()).hexdigest()
