"""The Helm chart embeds plain copies of the kustomize config and the generated monitoring files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SYNC = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "sync_chart_files.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SYNC), *args], capture_output=True, text=True, check=False
    )


def test_chart_files_are_fresh_copies() -> None:
    out = run("--check")
    assert out.returncode == 0, out.stderr
