"""Config schemas declared once: dataclass fields carry their file key, help, bounds and choices.

Decision: a small machinery over the frozen dataclasses the rest of the code already imports, not
pydantic. The public dataclasses *are* the declarations, so each default is written once (in the
field) and drives parsing, error messages and JSON Schema (:mod:`tuneloop.schema_json`); the agent
installs nothing new; errors keep the project's wording (``knobs[0].type: must be one of int,
real, categorical, got 'float'``) from :mod:`tuneloop.validation` without translating another
library's.

Rules of a declaration:

- a field made with :func:`setting` is read from the file under ``key`` (default: the field name),
  inside the sub-mapping ``group`` when set; a field without it is internal (filled by the caller);
- types: ``str``, ``int``, ``float``, ``bool``, ``Path``, enums, ``Literal``, ``X | None``,
  ``tuple[X, ...]``, ``Mapping[K, X]`` and nested dataclasses; ``kind="duration"`` reads seconds
  from 500ms, 30s, 5m or 1h; ``kind="key"`` takes the enclosing mapping key; ``kind="rest"``
  collects the keys the declaration does not name (free-form options); ``kind="inline"`` reads
  ``keys`` of the enclosing mapping through its ``parse`` hook (``query:``/``signal:`` beside
  ``max:``);
- an absent key takes the field's default; a nested declaration or a closed-key mapping is read
  from ``{}``; an optional type is None; ``derive`` computes a default from the values parsed so
  far (siblings, and enclosing scopes through ``Scope.parent``); otherwise the key is required;
- ``parse`` (with its ``schema`` fragment) handles an irregular shape; it may return a
  :class:`Spread` to fill several fields from one key;
- a declaration's ``check_config(self, field)`` method runs cross-field checks after it is built.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from tuneloop.validation import ConfigError

T = TypeVar("T")
META = "tuneloop.setting"


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one field is read from a file and documented."""

    help: str
    key: str | None = None
    group: str | None = None
    kind: Literal["duration", "key", "rest", "inline"] | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool | None = None  # durations are positive unless this is False
    choices: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # the closed key set of a mapping; an inline field's keys
    min_items: int = 0
    unit: str | None = None
    relative: bool = False  # a Path resolved against the file's folder
    derive: Callable[[Scope], Any] | None = None
    default_text: str | None = None
    parse: Callable[[Any, str, Scope], Any] | None = None
    schema: Callable[[], dict[str, Any]] | None = None
    missing: str = "is required"


def setting(
    default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **options: Any
) -> Any:
    """A dataclass field declared for files: ``help`` plus the options of :class:`Setting`.

    A misspelt option fails at import (``Setting`` takes keywords only from its own fields).
    """
    meta = {META: Setting(**options)}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class ConfigErrors(ConfigError):
    """Several problems at once (a declaration parsed with ``collect=True``)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("", "; ".join(str(e) for e in errors))
        self.errors = errors


@dataclasses.dataclass(frozen=True)
class Spread:
    """A parse hook's result that fills several fields of the declaration at once."""

    values: Mapping[str, Any]


@dataclasses.dataclass
class Scope:
    """What a ``derive`` or ``parse`` hook can see: values so far, the mapping key, the parent."""

    values: dict[str, Any]
    parent: Scope | None = None
    key: str | int | None = None
    base_dir: Path | None = None
    errors: list[ConfigError] | None = None


@dataclasses.dataclass(frozen=True)
class Declared:
    """One field of a declaration, resolved."""

    name: str
    type: Any
    setting: Setting | None
    field: dataclasses.Field[Any]

    @property
    def key(self) -> str:
        return (self.setting.key if self.setting else None) or self.name

    def default(self) -> Any:
        """The field's static default, or MISSING."""
        if self.field.default is not dataclasses.MISSING:
            return self.field.default
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return dataclasses.MISSING


_DECLARED: dict[Any, tuple[Declared, ...]] = {}


def declared(cls: Any) -> tuple[Declared, ...]:
    """The fields of a declaration with their resolved types (cached per class)."""
    if cls not in _DECLARED:
        hints = typing.get_type_hints(cls)
        _DECLARED[cls] = tuple(
            Declared(f.name, hints[f.name], f.metadata.get(META), f)
            for f in dataclasses.fields(cls)
        )
    return _DECLARED[cls]


def file_keys(cls: type) -> dict[str | None, list[str]]:
    """Keys a declaration reads, per group (None: the top level, which also lists the groups)."""
    keys: dict[str | None, list[str]] = {None: []}
    for d in declared(cls):
        if d.setting is None or d.setting.kind in ("key", "rest"):
            continue
        if d.setting.kind == "inline":
            keys[None].extend(d.setting.keys)
            continue
        group = d.setting.group
        if group is not None and group not in keys:
            keys[None].append(group)
            keys[group] = []
        keys[group].append(d.key)
    return keys


def optional_inner(tp: Any) -> Any:
    """``X`` for ``X | None``, else None."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def optional(d: Declared) -> bool:
    """Whether a file may leave the field out (a default, a derivation, or nothing required)."""
    s = d.setting
    if s is None or s.kind in ("key", "rest"):
        return True
    if d.default() is not dataclasses.MISSING or s.derive is not None or s.keys:
        return s.kind != "inline"
    if optional_inner(d.type) is not None:
        return True
    return dataclasses.is_dataclass(d.type) and all(optional(x) for x in declared(d.type))


def closed_keys(tp: Any, s: Setting | None) -> tuple[str, ...]:
    """The fixed keys of a mapping type: ``keys=`` or the values of an enum key type."""
    if s is not None and s.keys:
        return s.keys
    key_type = typing.get_args(tp)[0] if typing.get_args(tp) else str
    if isinstance(key_type, type) and issubclass(key_type, Enum):
        return tuple(str(m.value) for m in key_type)
    return ()
