"""Parsing a file's mapping against a declaration (see :mod:`tuneloop.schema` for the rules).

Fail-fast by default: the first problem raises a ConfigError naming its field. With
``collect=True`` every problem is recorded and raised together as ConfigErrors; a declaration
with a problem is not built, so its derivations and checks never read a missing value.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar

from tuneloop import validation as v
from tuneloop.schema_decl import (
    ConfigErrors,
    Declared,
    Scope,
    Setting,
    Spread,
    closed_keys,
    declared,
    file_keys,
    optional,
    optional_inner,
)
from tuneloop.validation import ConfigError

T = TypeVar("T")


def parse_declared(
    cls: type[T],
    raw: Any,
    field: str = "",
    *,
    parent: Scope | None = None,
    key: str | int | None = None,
    internal: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
    collect: bool = False,
) -> T:
    """Validate ``raw`` against the declaration ``cls``; errors name the field path."""
    errors = parent.errors if parent else ([] if collect else None)
    base = parent.base_dir if parent else base_dir
    scope = Scope({}, parent, key, base, errors)
    try:
        return _parse(cls, raw, field, scope, dict(internal or {}))
    except ConfigErrors:
        if parent is None and errors:
            raise ConfigErrors(errors) from None
        raise


def _parse(cls: type[T], raw: Any, field: str, scope: Scope, internal: dict[str, Any]) -> T:
    start = len(scope.errors or [])
    raw = v.mapping(raw, field)
    keys = file_keys(cls)
    if not any(d.setting and d.setting.kind == "rest" for d in declared(cls)):
        _attempt(scope, v.no_unknown_keys, raw, field, set(keys[None]))
    groups: dict[str | None, Mapping[str, Any]] = {None: raw}
    for group in keys:
        if group is not None:
            gpath = v.join(field, group)
            groups[group] = _attempt(scope, v.mapping, raw.get(group, {}), gpath) or {}
            _attempt(scope, v.no_unknown_keys, groups[group], gpath, set(keys[group]))
    deferred: list[Declared] = []
    for d in declared(cls):
        if d.setting is None:
            continue
        if d.setting.kind == "key":
            scope.values[d.name] = scope.key
        elif d.setting.kind == "rest":
            scope.values[d.name] = {k: val for k, val in raw.items() if k not in keys[None]}
        elif d.setting.kind == "inline":
            inline = {k: raw[k] for k in d.setting.keys if k in raw}
            _attempt(scope, _read_inline, d, inline, field, scope)
        elif d.key in groups[d.setting.group] or d.setting.derive is None:
            _attempt(scope, _read_field, d, groups[d.setting.group], field, scope)
        else:
            deferred.append(d)
    if scope.errors is not None and len(scope.errors) > start:
        raise ConfigErrors([])  # recorded already; derivations would read missing values
    for d in deferred:
        assert d.setting is not None and d.setting.derive is not None
        scope.values[d.name] = d.setting.derive(scope)
    obj = cls(**scope.values, **internal)
    check = getattr(obj, "check_config", None)
    if check is not None:
        _attempt(scope, check, field)
        if scope.errors is not None and len(scope.errors) > start:
            raise ConfigErrors([])
    return obj


def _read_field(d: Declared, src: Mapping[str, Any], field: str, scope: Scope) -> None:
    """Convert one field's value (or its absence) into ``scope.values``."""
    assert d.setting is not None
    group = d.setting.group
    path = v.join(v.join(field, group), d.key) if group else v.join(field, d.key)
    if d.key not in src:
        scope.values[d.name] = absent(d, path, scope)
        return
    value = convert(d.type, src[d.key], path, d.setting, scope)
    default = d.default()
    if isinstance(value, Spread):
        scope.values.update(value.values)
    elif (
        isinstance(value, dict) and isinstance(default, Mapping) and closed_keys(d.type, d.setting)
    ):
        scope.values[d.name] = {**default, **value}
    else:
        scope.values[d.name] = value


def _read_inline(d: Declared, inline: Mapping[str, Any], field: str, scope: Scope) -> None:
    assert d.setting is not None and d.setting.parse is not None
    scope.values[d.name] = d.setting.parse(inline, field, scope)


def _attempt(scope: Scope, action: Callable[..., T], *args: Any) -> T | None:
    """Run ``action``; in collecting mode record its error and carry on."""
    if scope.errors is None:
        return action(*args)
    try:
        return action(*args)
    except ConfigErrors as exc:
        scope.errors.extend(exc.errors)
    except ConfigError as exc:
        scope.errors.append(exc)
    return None


def absent(d: Declared, path: str, scope: Scope) -> Any:
    """The value of a field whose key the file leaves out."""
    default = d.default()
    if default is not dataclasses.MISSING:
        if isinstance(default, Path) and d.setting and d.setting.relative and scope.base_dir:
            return scope.base_dir / default
        return default
    if optional_inner(d.type) is not None:
        return None
    if optional(d):
        return convert(d.type, {}, path, d.setting, scope)
    v.fail(path, d.setting.missing if d.setting else "is required")


def convert(tp: Any, value: Any, path: str, s: Setting | None, scope: Scope) -> Any:
    """``value`` as type ``tp`` under the rules of ``s``."""
    s = s or Setting(help="")
    if s.parse is not None:
        return s.parse(value, path, scope)
    inner = optional_inner(tp)
    if inner is not None:
        return None if value is None else convert(inner, value, path, s, scope)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return v.string(value, path, choices=tuple(str(a) for a in args))
    if origin is tuple:
        if not isinstance(value, list):
            v.fail(path, "must be a list")
        if len(value) < s.min_items:
            v.fail(path, "must be a non-empty list" if s.min_items == 1 else
                   f"must hold at least {s.min_items} items")  # fmt: skip
        item = dataclasses.replace(s, min_items=0)
        return tuple(
            _item(args[0], x, v.join(path, i), item, scope, i) for i, x in enumerate(value)
        )
    if origin in (Mapping, dict):
        return _mapping(tp, value, path, s, scope)
    if dataclasses.is_dataclass(tp):
        return parse_declared(tp, value, path, parent=scope, key=scope.key)  # type: ignore[arg-type]
    return scalar(tp, value, path, s, scope)


def _item(tp: Any, value: Any, path: str, s: Setting, scope: Scope, key: str | int) -> Any:
    if dataclasses.is_dataclass(tp):
        return parse_declared(tp, value, path, parent=scope, key=key)  # type: ignore[arg-type]
    return convert(tp, value, path, s, scope)


def _mapping(tp: Any, value: Any, path: str, s: Setting, scope: Scope) -> dict[Any, Any]:
    value = v.mapping(value, path)
    key_type, value_type = typing.get_args(tp) or (str, Any)
    fixed = closed_keys(tp, s)
    if fixed:
        v.no_unknown_keys(value, path, set(fixed))
    elif len(value) < s.min_items:
        v.fail(path, "must not be empty")
    item = dataclasses.replace(s, min_items=0, keys=())
    out: dict[Any, Any] = {}
    for name in fixed or tuple(value):
        key = key_type(name) if isinstance(key_type, type) and issubclass(key_type, Enum) else name
        kpath = v.join(path, str(name))
        if name in value:
            out[key] = _item(value_type, value[name], kpath, item, scope, str(name))
        elif dataclasses.is_dataclass(value_type):
            out[key] = _item(value_type, {}, kpath, item, scope, str(name))
    return out


def scalar(tp: Any, value: Any, path: str, s: Setting, scope: Scope) -> Any:
    """A leaf value: duration, bool, int, float, str, Path or enum."""
    if s.kind == "duration":
        seconds = v.duration(value, path, positive=s.positive is not False)
        return int(seconds) if tp is int else seconds
    if tp is bool:
        return v.boolean(value, path)
    if tp is int:
        low = None if s.minimum is None else int(s.minimum)
        high = None if s.maximum is None else int(s.maximum)
        return v.integer(value, path, minimum=low, maximum=high)
    if tp is float:
        return v.number(
            value, path, minimum=s.minimum, maximum=s.maximum, positive=bool(s.positive)
        )
    if tp is str:
        return v.string(value, path, choices=s.choices)
    if tp is Path:
        p = Path(v.string(value, path))
        return scope.base_dir / p if s.relative and scope.base_dir else p
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(v.string(value, path, choices=tuple(str(m.value) for m in tp)))
    if tp is Any:
        return value
    raise TypeError(f"{path}: no conversion for {tp!r}; declare a parse hook")
