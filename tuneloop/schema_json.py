"""JSON Schema (draft 2020-12) from the same declarations that parse the files.

Each object carries ``additionalProperties: false`` (unless it collects free-form options), each
property its description (with the unit), default, enum and bounds. Durations accept a number of
seconds or a string like ``30s``. A default of None (the key left out) is not written. Defaults
that depend on other values (``derive``) are evaluated where they need only the mapping key (a
collector's interval) and described in words (``default_text``) otherwise. Cross-field rules that
JSON Schema expresses well enough (exactly one of two keys) come from a declaration's
``SCHEMA_EXTRA``; the rest are checked by the parser alone.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from tuneloop.schema_decl import (
    Declared,
    Scope,
    Setting,
    closed_keys,
    declared,
    optional,
    optional_inner,
)
from tuneloop.validation import DURATION_PATTERN

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def document_schema(cls: type, *, title: str, schema_id: str) -> dict[str, Any]:
    """The full schema of a file whose top level is the declaration ``cls``."""
    return {"$schema": DRAFT, "$id": schema_id, "title": title, **object_schema(cls)}


def render(schema: Mapping[str, Any]) -> str:
    """Stable text of a schema (what the committed files hold)."""
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def _doc(cls: type) -> str | None:
    doc = (cls.__doc__ or "").strip()
    if not doc or doc.startswith(f"{cls.__name__}("):  # the dataclass's generated signature
        return None
    return " ".join(doc.split("\n\n")[0].split())


def object_schema(cls: type, key: str | None = None) -> dict[str, Any]:
    """An object schema for the declaration ``cls`` (``key``: its key in a closed mapping)."""
    props: dict[str, Any] = {}
    required: list[str] = []
    groups: dict[str, dict[str, Any]] = {}
    extra_ok = False
    for d in declared(cls):
        if d.setting is None or d.setting.kind == "key":
            continue
        if d.setting.kind == "rest":
            extra_ok = True
            continue
        if d.setting.kind == "inline":
            assert d.setting.schema is not None
            props.update(d.setting.schema())
            continue
        target = props
        if d.setting.group:
            group = groups.setdefault(d.setting.group, _group_schema(cls, d.setting.group))
            props.setdefault(d.setting.group, group)
            target = group["properties"]
        target[d.key] = property_schema(d, key)
        if _required(d) and not d.setting.group:
            required.append(d.key)
    out: dict[str, Any] = {"type": "object"}
    if (doc := _doc(cls)) is not None:
        out["description"] = doc
    out["properties"] = props
    if required:
        out["required"] = required
    out["additionalProperties"] = extra_ok
    out.update(getattr(cls, "SCHEMA_EXTRA", {}))
    return out


def _group_schema(cls: type, group: str) -> dict[str, Any]:
    """The object of a ``group`` (described by the declaration's ``GROUP_HELP``)."""
    out: dict[str, Any] = {"type": "object"}
    if (text := getattr(cls, "GROUP_HELP", {}).get(group)) is not None:
        out["description"] = text
    return out | {"properties": {}, "additionalProperties": False}


def _required(d: Declared) -> bool:
    return not optional(d)


def property_schema(d: Declared, key: str | None) -> dict[str, Any]:
    """One property: its type schema, description, unit and default."""
    s = d.setting
    assert s is not None
    out: dict[str, Any] = {}
    text = s.help + (f" Unit: {s.unit}." if s.unit else "")
    if s.default_text:
        text += f" Default: {s.default_text}."
    out["description"] = text
    out.update(s.schema() if s.schema else type_schema(d.type, s, key))
    default = _default(d, key)
    if default is not dataclasses.MISSING and default is not None:  # None: left out
        out["default"] = default
    return out


def _default(d: Declared, key: str | None) -> Any:
    assert d.setting is not None
    if d.setting.default_text is not None:  # not a constant (a host name, an environment value)
        return dataclasses.MISSING
    if d.setting.derive is not None:
        try:
            return jsonable(d.setting.derive(Scope({}, key=key)))
        except (KeyError, TypeError, AttributeError):
            return dataclasses.MISSING
    default = d.default()
    if default is dataclasses.MISSING or dataclasses.is_dataclass(default):
        return dataclasses.MISSING
    if isinstance(default, Path) and d.setting.relative:
        return str(default)
    return jsonable(default)


def jsonable(value: Any) -> Any:
    """A default as JSON (enums by value, paths as text, tuples as lists)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [jsonable(x) for x in value]
    if isinstance(value, Mapping):
        return {str(jsonable(k)): jsonable(x) for k, x in value.items()}
    if dataclasses.is_dataclass(value):
        return dataclasses.MISSING
    return value


def _bounds(s: Setting, out: dict[str, Any]) -> dict[str, Any]:
    if s.positive:
        out["exclusiveMinimum"] = 0
    if s.minimum is not None:
        out["minimum"] = s.minimum
    if s.maximum is not None:
        out["maximum"] = s.maximum
    return out


def duration_schema(positive: bool = True) -> dict[str, Any]:
    """A number of seconds, or text like 500ms, 30s, 5m, 1h."""
    number: dict[str, Any] = {"type": "number"}
    number["exclusiveMinimum" if positive else "minimum"] = 0
    return {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}]}


def type_schema(tp: Any, s: Setting, key: str | None = None) -> dict[str, Any]:
    """The schema of a type under the rules of ``s``."""
    inner = optional_inner(tp)
    if inner is not None:
        return {"anyOf": [type_schema(inner, s, key), {"type": "null"}]}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if s.kind == "duration" and origin is None:
        return duration_schema(positive=s.positive is not False)
    if origin is Literal:
        return {"type": "string", "enum": [str(a) for a in args]}
    if origin is tuple:
        out: dict[str, Any] = {"type": "array", "items": type_schema(args[0], _item(s))}
        return out | ({"minItems": s.min_items} if s.min_items else {})
    if origin in (Mapping, dict):
        return _mapping_schema(tp, s)
    if dataclasses.is_dataclass(tp):
        return object_schema(tp, key)  # type: ignore[arg-type]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"type": "string", "enum": [str(m.value) for m in tp]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return _bounds(s, {"type": "integer"})
    if tp is float:
        return _bounds(s, {"type": "number"})
    if tp in (str, Path):
        return {"type": "string", "minLength": 1} | ({"enum": list(s.choices)} if s.choices else {})
    return {}


def _item(s: Setting) -> Setting:
    return dataclasses.replace(s, min_items=0, keys=(), help="")


def _keyed(key: str, s: Setting, schema: dict[str, Any]) -> dict[str, Any]:
    """A closed mapping's entry, described by the mapping's help unless it describes itself."""
    return schema if "description" in schema else {"description": f"{key}: {s.help}", **schema}


def _mapping_schema(tp: Any, s: Setting) -> dict[str, Any]:
    value_type = typing.get_args(tp)[1] if typing.get_args(tp) else Any
    fixed = closed_keys(tp, s)
    if fixed:
        props = {k: _keyed(k, s, type_schema(value_type, _item(s), k)) for k in fixed}
        return {"type": "object", "properties": props, "additionalProperties": False}
    out: dict[str, Any] = {
        "type": "object",
        "additionalProperties": type_schema(value_type, _item(s)),
    }
    return out | ({"minProperties": s.min_items} if s.min_items else {})
