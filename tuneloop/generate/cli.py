"""``tuneloop generate [--check] [--root DIR] [--runbook-base-url URL]``: write, or check,
every generated artifact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tuneloop.generate import alerts, dashboards, dcgm_compat, runbooks

GENERATED_DIRS = (
    runbooks.RUNBOOKS_DIR,
    dashboards.DASHBOARDS_DIR,
    alerts.TESTS_DIR,
    dashboards.DEPLOY_COPIES,
)
GENERATED_SUFFIXES = {
    runbooks.RUNBOOKS_DIR: ".md",
    dashboards.DASHBOARDS_DIR: ".json",
    alerts.TESTS_DIR: ".yaml",
    dashboards.DEPLOY_COPIES: ".json",
}


def render_all(
    root: Path, runbook_base_url: str = alerts.DEFAULT_RUNBOOK_BASE_URL
) -> dict[str, str]:
    """Relative path -> content of everything ``generate`` writes."""
    files: dict[str, str] = {}
    parts = (
        dashboards.render(root),
        alerts.render(root, runbook_base_url),
        runbooks.render(root),
        dcgm_compat.render(),
    )
    for part in parts:
        files.update(part)
    return files


def _orphans(root: Path, files: dict[str, str]) -> list[str]:
    """Files in generated folders that the sources no longer produce."""
    out = []
    for folder, suffix in GENERATED_SUFFIXES.items():
        for path in sorted((root / folder).glob(f"*{suffix}")):
            rel = path.relative_to(root).as_posix()
            if rel not in files:
                out.append(rel)
    return out


def stale(root: Path, files: dict[str, str]) -> list[str]:
    """Problems with the tree as it is: missing, stale or orphaned generated files."""
    problems = []
    for rel, content in sorted(files.items()):
        path = root / rel
        if not path.exists():
            problems.append(f"missing: {rel}")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"stale: {rel}")
    problems += [f"orphaned: {rel}" for rel in _orphans(root, files)]
    return problems


def write(root: Path, files: dict[str, str]) -> list[str]:
    """Write what changed and delete orphans; returns the paths touched."""
    touched = []
    for rel, content in sorted(files.items()):
        path = root / rel
        if path.exists() and path.read_text(encoding="utf-8") == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        touched.append(rel)
    for rel in _orphans(root, files):
        (root / rel).unlink()
        touched.append(f"{rel} (removed)")
    return touched


def cmd_generate(args: argparse.Namespace) -> int:
    """Run the command; exit 1 with ``--check`` when anything is stale."""
    root = Path(args.root).resolve()
    if not (root / "alerts").is_dir() or not (root / dashboards.DASHBOARDS_DIR).is_dir():
        print(f"error: {root} has no alerts/ and dashboards/ folders (--root)", file=sys.stderr)
        return 2
    try:
        files = render_all(root, args.runbook_base_url)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = stale(root, files)
        for line in problems:
            print(line)
        if problems:
            print("run `tuneloop generate` and commit the result", file=sys.stderr)
            return 1
        print(f"{len(files)} generated files up to date")
        return 0
    for rel in write(root, files):
        print(f"wrote {rel}")
    return 0


def add_generate_command(subparsers: Any) -> None:
    """Register ``generate`` on the ``tuneloop`` command line."""
    p = subparsers.add_parser(
        "generate", help="write dashboards JSON, alert rules and tests, runbooks from sources"
    )
    p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if anything is stale"
    )
    p.add_argument("--root", default=".", help="repository root (default: current directory)")
    p.add_argument(
        "--runbook-base-url",
        default=alerts.DEFAULT_RUNBOOK_BASE_URL,
        metavar="URL",
        help="where the runbook pages are published; each alert's runbook_url is URL/<Alert>.md "
        f"(default: {alerts.DEFAULT_RUNBOOK_BASE_URL!r}, this repository's folder, relative)",
    )
    p.set_defaults(func=lambda args, *_: cmd_generate(args))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m tuneloop.generate.cli``)."""
    parser = argparse.ArgumentParser(prog="tuneloop")
    add_generate_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
