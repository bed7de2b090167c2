"""Copy the files the Helm chart embeds from where they are made; ``--check`` fails when stale.

The chart reads its configuration files, the PrometheusRule and the dashboards with
``.Files.Get``, which cannot follow paths outside the chart or symlinks. So the chart keeps plain
copies under ``tuneloop/files/``: the kustomize base's configuration (``deploy/base/config``) and
the generated monitoring files (``deploy/overlays/kube-prometheus-stack/generated``, written by
``tuneloop generate``). Run this after either changes; the deploy tests run ``--check``.

    python deploy/helm/sync_chart_files.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]
FILES = DEPLOY / "helm" / "tuneloop" / "files"
GENERATED = DEPLOY / "overlays" / "kube-prometheus-stack" / "generated"


def sources() -> dict[Path, Path]:
    """Each chart file and the file it copies."""
    pairs = {FILES / p.name: p for p in sorted((DEPLOY / "base" / "config").glob("*.yaml"))}
    for rule in ("prometheusrule.yaml", "prometheusrule-dcgm-compat.yaml"):
        pairs[FILES / rule] = GENERATED / rule
    for dashboard in sorted((GENERATED / "dashboards").glob("*.json")):
        pairs[FILES / "dashboards" / dashboard.name] = dashboard
    return pairs


def stale() -> list[str]:
    """Chart files that differ from their source, are missing, or have no source."""
    expected = sources()
    problems = [
        f"{copy.relative_to(DEPLOY)}: differs from {source.relative_to(DEPLOY)}"
        for copy, source in expected.items()
        if not copy.is_file() or copy.read_bytes() != source.read_bytes()
    ]
    extra = [p for p in FILES.rglob("*") if p.is_file() and p not in expected]
    problems += [f"{p.relative_to(DEPLOY)}: no source any more" for p in sorted(extra)]
    return problems


def sync() -> list[str]:
    """Rewrite every stale copy and remove orphans; the paths changed."""
    changed: list[str] = []
    expected = sources()
    for copy, source in expected.items():
        data = source.read_bytes()
        if not copy.is_file() or copy.read_bytes() != data:
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(data)
            changed.append(str(copy.relative_to(DEPLOY)))
    for orphan in [p for p in FILES.rglob("*") if p.is_file() and p not in expected]:
        orphan.unlink()
        changed.append(str(orphan.relative_to(DEPLOY)))
    return changed


def main(argv: list[str] | None = None) -> int:
    """Sync, or with --check report what is stale (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale copies, change nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python deploy/helm/sync_chart_files.py", file=sys.stderr)
        return 1 if problems else 0
    for path in sync():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
