"""The generated rules pass the real `promtool check rules` and `promtool test rules`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="needs promtool (Debian: prometheus)"),
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_promtool_check_rules() -> None:
    out = _run("check", "rules", "alerts/rules.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_fire_and_stay_quiet() -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "alerts" / "tests").glob("*.yaml"))
    assert files
    out = _run("test", "rules", *files)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    text = (ROOT / "alerts" / "tests" / "tuneloop-gpu.yaml").read_text()
    broken = tmp_path / "tests" / "broken.yaml"
    broken.parent.mkdir()
    shutil.copy(ROOT / "alerts" / "rules.yaml", tmp_path / "rules.yaml")
    broken.write_text(text.replace("GPU 3 on n1 is lost", "GPU 4 on n1 is lost"))
    out = subprocess.run([PROMTOOL, "test", "rules", str(broken)], capture_output=True, text=True)
    assert out.returncode != 0
