"""The agent's configuration: a YAML file, overridden by flags, validated field by field.

The declarations live in :mod:`tuneloop.agent_settings` (the schema the tuner's ``schema``
command also prints); this module loads the file, applies flags to the same mapping the file
produces before validation, so one validator serves both and every error names the field
(``collectors.gpu.interval: must be ...``), and checks the listen address with the exporter's
own parser.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuneloop.agent_settings import (
    COLLECTORS,
    DEFAULT_ENABLED,
    DEFAULT_INTERVALS,
    DEFAULT_STATE_DIR,
    ENGINES,
    AgentConfig,
    BenchSettings,
    CollectorSettings,
    GpuSettings,
    InferenceSettings,
    NodeTuneSettings,
    TargetSettings,
)
from tuneloop.config_file import read_mapping
from tuneloop.schema import parse
from tuneloop.validation import ConfigError

__all__ = [
    "COLLECTORS",
    "DEFAULT_ENABLED",
    "DEFAULT_INTERVALS",
    "DEFAULT_STATE_DIR",
    "ENGINES",
    "AgentConfig",
    "BenchSettings",
    "CollectorSettings",
    "ConfigError",
    "GpuSettings",
    "InferenceSettings",
    "NodeTuneSettings",
    "TargetSettings",
    "load_config",
    "parse_config",
    "read_yaml",
    "set_path",
]


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; errors name the file."""
    return read_mapping(path)


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating levels as needed (for flag overrides)."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(part, "must be a mapping")
    node[leaf] = value


def parse_config(raw: Mapping[str, Any]) -> AgentConfig:
    """Validate a configuration mapping into an AgentConfig."""
    config = parse(AgentConfig, raw, internal={"source": copy.deepcopy(dict(raw))})
    from agent.exporter import parse_listen

    try:
        parse_listen(config.listen)
    except ValueError as exc:
        raise ConfigError("listen", str(exc)) from exc
    return config


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> AgentConfig:
    """Read the file (if any), apply ``overrides`` (dotted paths), validate."""
    data = read_yaml(path) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        set_path(data, dotted, value)
    return parse_config(data)
