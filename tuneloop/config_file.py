"""The one YAML loader for configuration files: every failure is one line that names the file.

An empty document reads as ``{}`` (every field takes its default); anything else that is not a
mapping at the top level is an error. JSON is YAML, so ``.json`` files load the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tuneloop.validation import ConfigError


def one_line(text: object) -> str:
    """``text`` with its line breaks and runs of spaces folded (YAML errors span lines)."""
    return " ".join(str(text).split())


def read_text(path: str | Path) -> str:
    """The file's text; unreadable or non-UTF-8 files are a ConfigError naming the file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(p), f"cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def parse_mapping(text: str, origin: str, syntax: str = "YAML") -> dict[str, Any]:
    """The top-level mapping of a YAML document; ``origin`` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(origin, f"not valid {syntax}: {one_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(origin, f"must hold a mapping at the top level, got {kind}")
    return data


def read_mapping(path: str | Path, syntax: str = "YAML") -> dict[str, Any]:
    """Read a configuration file into its top-level mapping."""
    return parse_mapping(read_text(path), str(path), syntax)
