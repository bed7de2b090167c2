"""The committed JSON Schemas are fresh, well formed and accept every shipped file.

Regenerate them with ``tuneloop schema --write`` (or ``python -m tuner.schema_cmd --write``).
"""

from __future__ import annotations

import argparse
import copy
import json
import string
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml

from lab.lab import Lab
from tuneloop.validation import ConfigError
from tuner.schema_cmd import REGENERATE, SCHEMAS, add_schema_command, schema_file, stale_files
from tuner.spec import parse_experiment

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "base" / "config"
# Examples are experiments but the shifter's; every schema but the shifter's has a deploy file.
SHIPPED = [
    (p, "shift" if p.name == "shift.yaml" else "experiment")
    for p in sorted((ROOT / "examples").glob("*.yaml"))
] + [(DEPLOY / f"{name}.yaml", name) for name in SCHEMAS if name != "shift"]


def committed(name: str) -> dict[str, Any]:
    return json.loads((ROOT / schema_file(name)).read_text(encoding="utf-8"))


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tuneloop")
    add_schema_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schema", *argv])
    return int(args.func(args))


def rendered(path: Path, tmp_path: Path) -> dict[str, Any]:
    """The document as its program reads it (lab templates filled the way the lab fills them)."""
    if not path.name.startswith("lab-") or "${" not in path.read_text():
        return yaml.safe_load(path.read_text())

    def value(name: str) -> str:
        if name.endswith("_speed"):
            return "2.5"
        return "http://127.0.0.1:9090" if name == "prometheus" else "/tmp/lab-x"

    values = {
        m.group("braced"): value(m.group("braced"))
        for m in string.Template.pattern.finditer(path.read_text())
        if m.group("braced")
    }
    fake = SimpleNamespace(values=lambda: values, dir=tmp_path)
    out = Lab.render_experiment(fake, path, tmp_path / path.name)  # type: ignore[arg-type]
    return yaml.safe_load(out.read_text())


def test_committed_schemas_are_fresh():
    stale = stale_files(ROOT)
    assert not stale, f"stale JSON Schema files {stale}: run {REGENERATE}"


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_schemas_are_valid_draft_2020_12_with_closed_objects(name):
    schema = committed(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                # an applier kind's options (experiment appliers, the shifter's balancer)
                free = path.endswith(("appliers.additionalProperties", "shift.balancer"))
                assert node["additionalProperties"] is free, path
                for key, prop in node["properties"].items():
                    if "description" in node:  # a declared object: every field is described
                        assert "description" in prop, f"{path}.{key}"
                    walk(prop, f"{path}.{key}")
            for key, value in node.items():
                if key != "properties":
                    walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(schema, name)


@pytest.mark.parametrize(("path", "name"), SHIPPED, ids=lambda x: getattr(x, "name", x))
def test_shipped_files_name_and_match_their_schema(path, name, tmp_path):
    first = path.read_text().splitlines()[0]
    target = first.removeprefix("# yaml-language-server: $schema=")
    assert target != first, f"{path}: first line must name its schema"
    assert (path.parent / target).resolve() == (ROOT / schema_file(name)).resolve()
    jsonschema.validate(rendered(path, tmp_path), committed(name))


def test_schema_and_parser_reject_the_same_mistakes():
    good = yaml.safe_load((ROOT / "examples" / "tcp-buffers.yaml").read_text())
    schema = committed("experiment")
    mistakes = [
        ("knobs", 0, "colour", "red"),
        ("knobs", 0, "type", "float"),
        ("knobs", 2, "values", ["cubic"]),
        ("measurement", None, "window", "soon"),
        ("budget", None, "trials", 0),
        ("safety", None, "trust_region", 2),
        ("strategy", None, "acq_func", "UCB"),
        ("signals", None, "retries", 11),
    ]
    for section, index, key, value in mistakes:
        data = copy.deepcopy(good)
        node = data[section] if index is None else data[section][index]
        node[key] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, schema)
        with pytest.raises(ConfigError):
            parse_experiment(data)


def test_schema_command_prints_writes_and_checks(tmp_path, capsys):
    assert run(["agent"]) == 0
    assert json.loads(capsys.readouterr().out) == committed("agent")
    assert run(["--check", "--root", str(tmp_path)]) == 1
    assert "stale: schemas/experiment.schema.json" in capsys.readouterr().err
    assert run(["--write", "--root", str(tmp_path)]) == 0
    assert run(["--check", "--root", str(tmp_path)]) == 0
    written = tmp_path / schema_file("node-tuning")
    assert json.loads(written.read_text()) == committed("node-tuning")
    written.write_text("{}\n")
    assert run(["--check", "--root", str(tmp_path)]) == 1
    assert run([]) == 2


def test_node_tuning_schema_admits_every_allowlisted_key():
    from agent.nodetune.allowlist import ALLOWLIST

    sysctls = {key: "1" for key in ALLOWLIST}
    jsonschema.validate({"generation": 1, "sysctls": sysctls}, committed("node-tuning"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"generation": 1, "sysctls": {"../etc": "1"}}, committed("node-tuning"))
