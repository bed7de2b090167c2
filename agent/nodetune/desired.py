"""The desired-state file: ``{"generation": N, "sysctls": {key: value, ...}}`` in YAML or JSON.

Everything is validated before anything is written: the file must parse, the generation must be
a non-negative integer, and every key must be on the allowlist with a value inside its bounds.
All problems are reported together, each naming its field, so one edit fixes a bad ConfigMap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.nodetune.allowlist import SysctlValueError, normalise


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
    unknown = sorted(str(k) for k in set(data) - {"generation", "sysctls"})
    if unknown:
        problems.append(f"{unknown[0]}: unknown field (allowed: generation, sysctls)")
    generation = data.get("generation")
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        problems.append(f"generation: must be a non-negative integer, got {generation!r}")
    raw = data.get("sysctls")
    sysctls: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        # An empty mapping is valid: nothing is desired yet, so nothing changes.
        problems.append(f"sysctls: must be a mapping of key to value, got {raw!r}")
    else:
        for key, value in raw.items():
            try:
                sysctls[str(key)] = normalise(key, value)
            except SysctlValueError as exc:
                problems.append(f"sysctls.{exc}")
    if problems:
        raise DesiredStateError(f"{source}: " + "; ".join(problems))
    assert isinstance(generation, int)
    return Desired(generation, sysctls)


def load_desired(path: Path) -> Desired:
    """Read and validate a desired-state file (``.json`` or YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DesiredStateError(f"{path}: cannot read desired state: {exc}") from exc
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise DesiredStateError(f"{path}: not valid YAML or JSON: {exc}") from exc
    return parse_desired(data, str(path))


def content_hash(path: Path) -> str:
    """SHA-256 of the file behind ``path`` (symlinks resolved), for change detection."""
    return hashlib.sha256(path.resolve().read_bytes()).hexdigest()
