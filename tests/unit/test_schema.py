"""The declaration machinery: keys, groups, defaults, derivations, hooks, checks, collecting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from tuneloop.schema import ConfigErrors, Scope, Spread, parse, setting
from tuneloop.schema_json import object_schema
from tuneloop.validation import ConfigError, fail, join


class Speed(StrEnum):
    SLOW = "slow"
    FAST = "fast"


def _pair(value: Any, field: str, _scope: Scope) -> Spread:
    if not isinstance(value, list) or len(value) != 2:
        fail(field, "must be a list [a, b]")
    return Spread({"a": value[0], "b": value[1]})


@dataclass(frozen=True)
class Leaf:
    """A leaf."""

    name: str = setting(kind="key", help="")
    size: int = setting(derive=lambda s: len(str(s.key)), help="Defaults to the key's length.")
    label: str = setting(derive=lambda s: f"{s.key}-{s.values['size']}", help="key-size")


@dataclass(frozen=True, kw_only=True)
class Root:
    """A root."""

    title: str = setting(help="Required.")
    mode: Literal["a", "b"] = setting("a", help="A literal.")
    speed: Speed = setting(Speed.SLOW, help="An enum.")
    wait_s: float = setting(5.0, key="wait", kind="duration", help="A duration.")
    per_speed: Mapping[Speed, float] = setting(
        factory=lambda: {Speed.SLOW: 1.0, Speed.FAST: 2.0}, kind="duration", help="Merged."
    )
    leaves: Mapping[str, Leaf] = setting(keys=("x", "yy"), help="Closed keys.")
    start: float = setting(0.1, group="limits", positive=True, help="In a group.")
    stop: float = setting(0.5, group="limits", maximum=1, help="In a group.")
    a: int | None = setting(None, key="pair", parse=_pair, help="Fills a and b.")
    b: int | None = None
    items: tuple[int, ...] = setting((), min_items=0, help="A list.")
    folder: Path = setting(Path("state"), relative=True, help="Relative to the file.")
    origin: str = ""

    SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {"examples": [{"title": "t"}]}

    def check_config(self, field: str) -> None:
        if self.stop <= self.start:
            fail(join(field, "limits.stop"), "must exceed limits.start")


def test_defaults_derivations_and_internal_fields(tmp_path):
    root = parse(Root, {"title": "t"}, internal={"origin": "x"}, base_dir=tmp_path)
    assert (root.mode, root.speed, root.wait_s) == ("a", Speed.SLOW, 5.0)
    assert root.leaves["x"] == Leaf("x", 1, "x-1") and root.leaves["yy"] == Leaf("yy", 2, "yy-2")
    assert (root.start, root.stop, root.a, root.b, root.origin) == (0.1, 0.5, None, None, "x")
    assert root.folder == tmp_path / "state"


def test_given_values_convert_merge_and_spread():
    raw = {
        "title": "t",
        "speed": "fast",
        "wait": "500ms",
        "per_speed": {"fast": "1m"},
        "leaves": {"yy": {"size": 7}},
        "limits": {"start": 0.2},
        "pair": [3, 4],
        "items": [1, 2.0],
    }
    root = parse(Root, raw)
    assert root.speed is Speed.FAST and root.wait_s == 0.5
    assert root.per_speed == {Speed.SLOW: 1.0, Speed.FAST: 60.0}
    assert root.leaves["yy"] == Leaf("yy", 7, "yy-7") and root.start == 0.2
    assert (root.a, root.b, root.items) == (3, 4, (1, 2))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "title: is required"),
        ({"title": "t", "colour": 1}, r"colour: unknown field \(allowed: folder, items, leaves, "
         r"limits, mode, pair, per_speed, speed, title, wait\)"),
        ({"title": "t", "mode": "c"}, "mode: must be one of a, b, got 'c'"),
        ({"title": "t", "speed": "warp"}, "speed: must be one of slow, fast"),
        ({"title": "t", "wait": "soon"}, "wait: must be a duration"),
        ({"title": "t", "per_speed": {"slowish": 1}}, r"per_speed\.slowish: unknown field"),
        ({"title": "t", "leaves": {"z": {}}}, r"leaves\.z: unknown field \(allowed: x, yy\)"),
        ({"title": "t", "leaves": {"x": {"size": "big"}}}, r"leaves\.x\.size: must be an integer"),
        ({"title": "t", "limits": {"start": 0}}, r"limits\.start: must be a positive number"),
        ({"title": "t", "limits": {"end": 1}}, r"limits\.end: unknown field \(allowed: start, "
         r"stop\)"),
        ({"title": "t", "limits": [1]}, r"limits: must be a mapping, got list"),
        ({"title": "t", "limits": {"stop": 0.05}}, r"limits\.stop: must exceed limits\.start"),
        ({"title": "t", "pair": [1]}, r"pair: must be a list \[a, b\]"),
        ({"title": "t", "items": [1, "x"]}, r"items\[1\]: must be an integer"),
        ({"title": "t", "items": 3}, "items: must be a list"),
        ([], "must be a mapping, got list"),
    ],
)  # fmt: skip
def test_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse(Root, raw)


def test_collecting_mode_reports_every_problem():
    raw = {"title": "", "colour": 1, "wait": "soon", "leaves": {"x": {"size": "big"}}}
    with pytest.raises(ConfigErrors) as err:
        parse(Root, raw, collect=True)
    fields = [e.field for e in err.value.errors]
    assert fields == ["colour", "title", "wait", "leaves.x.size"]
    assert "; " in str(err.value)


def test_json_schema_follows_the_declaration():
    schema = object_schema(Root)
    props = schema["properties"]
    assert schema["required"] == ["title"] and schema["additionalProperties"] is False
    assert schema["description"] == "A root." and schema["examples"] == [{"title": "t"}]
    assert props["mode"]["enum"] == ["a", "b"] and props["mode"]["default"] == "a"
    assert props["speed"]["enum"] == ["slow", "fast"] and props["speed"]["default"] == "slow"
    assert props["wait"]["default"] == 5.0
    assert {s["type"] for s in props["wait"]["anyOf"]} == {"number", "string"}
    assert props["per_speed"]["default"] == {"slow": 1.0, "fast": 2.0}
    leaves = props["leaves"]["properties"]
    assert leaves["yy"]["properties"]["size"]["default"] == 2
    assert "default" not in leaves["yy"]["properties"]["label"]  # needs a sibling: not constant
    assert props["limits"]["properties"]["start"]["exclusiveMinimum"] == 0
    assert props["limits"]["properties"]["stop"]["maximum"] == 1
    assert "origin" not in props and "b" not in props and "pair" in props
