"""``tuneloop schema NAME``: the JSON Schema of a configuration file, from its declaration.

``NAME`` is experiment, agent, controller, node-tuning or shift. ``--write`` refreshes the committed
files under ``schemas/`` (editors load them through the ``# yaml-language-server: $schema=...``
line at the top of each example and deploy file); ``--check`` writes nothing and exits 1 when a
committed file is stale. The agent's and node-tuning declarations live in the core package, so
this tuner command documents them without importing the agent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tuneloop.agent_settings import AgentConfig
from tuneloop.node_tuning_settings import DesiredState
from tuneloop.schema_json import document_schema, render
from tuner.controller_config import ControllerConfig
from tuner.shift.config import ShiftConfig
from tuner.spec import Experiment

SCHEMAS: dict[str, tuple[type, str]] = {
    "experiment": (Experiment, "tuneloop experiment"),
    "agent": (AgentConfig, "tuneloop-agent configuration"),
    "controller": (ControllerConfig, "tuneloop controller configuration"),
    "node-tuning": (DesiredState, "tuneloop node-tuning desired state"),
    "shift": (ShiftConfig, "tuneloop traffic shifter configuration"),
}
SCHEMA_DIR = "schemas"
REGENERATE = "tuneloop schema --write (or: python -m tuner.schema_cmd --write)"


def schema_file(name: str) -> str:
    """The committed file of schema ``name``, relative to the repository root."""
    return f"{SCHEMA_DIR}/{name}.schema.json"


def schema_text(name: str) -> str:
    """The JSON Schema of ``name`` as the committed file holds it."""
    cls, title = SCHEMAS[name]
    return render(document_schema(cls, title=title, schema_id=f"urn:tuneloop:schema:{name}"))


def stale_files(root: Path) -> list[str]:
    """Committed schema files that differ from the declarations (or are missing)."""
    stale = []
    for name in SCHEMAS:
        path = root / schema_file(name)
        if not path.is_file() or path.read_text(encoding="utf-8") != schema_text(name):
            stale.append(schema_file(name))
    return stale


def cmd_schema(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if args.check:
        stale = stale_files(root)
        for rel in stale:
            print(f"stale: {rel} (run {REGENERATE})", file=sys.stderr)
        return 1 if stale else 0
    if args.write:
        (root / SCHEMA_DIR).mkdir(parents=True, exist_ok=True)
        for name in SCHEMAS:
            (root / schema_file(name)).write_text(schema_text(name), encoding="utf-8")
            print(f"wrote {schema_file(name)}")
        return 0
    if args.name is None:
        print(f"error: name one of {', '.join(SCHEMAS)}, or use --write/--check", file=sys.stderr)
        return 2
    sys.stdout.write(schema_text(args.name))
    return 0


def add_schema_command(subparsers: Any) -> None:
    """Register ``schema`` on the ``tuneloop`` command line."""
    p = subparsers.add_parser(
        "schema", help="print the JSON Schema of a configuration file (for editors)"
    )
    p.add_argument("name", nargs="?", choices=tuple(SCHEMAS), help="which file's schema")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write all to {SCHEMA_DIR}/")
    mode.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a committed file is stale"
    )
    p.add_argument("--root", default=".", help="repository root (default: current directory)")
    p.set_defaults(func=lambda args, *_: cmd_schema(args))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m tuner.schema_cmd``)."""
    parser = argparse.ArgumentParser(prog="tuneloop")
    sub = parser.add_subparsers(dest="command", required=True)
    add_schema_command(sub)
    args = parser.parse_args(["schema", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
