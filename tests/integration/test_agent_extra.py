"""The agent runs from an ``[agent]``-only install: serving works with the tuner's stack absent.

The agent's process is started with an import hook that refuses the packages only the tuner and
the generator need, as if they were not installed; it must serve every collector all the same.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.agent_process import agent_flags, socket_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ABSENT = (
    "sklearn",
    "skopt",
    "scipy",
    "matplotlib",
    "grafanalib",
    "optuna",
    "numpy",
    "tuner",
    "lab",
)
LAUNCHER = f"""
import runpy, sys
ABSENT = {ABSENT!r}

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in an [agent] install)")
        return None

sys.meta_path.insert(0, Absent())
sys.argv[0] = "tuneloop-agent"
runpy.run_module("agent.cli", run_name="__main__")
"""


COLLECTORS = ("gpu", "numa", "rdma", "net", "bench")


def test_agent_serves_without_the_tuner_stack(tmp_path: Path) -> None:
    with socket_port() as port:
        pass
    cmd = [sys.executable, "-c", LAUNCHER, "serve", "--listen", f"127.0.0.1:{port}"]
    cmd += agent_flags("http://127.0.0.1:9", tmp_path)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                # each collector runs on its own schedule: wait until every one has reported
                if all(f'success{{collector="{c}"}}' in text for c in COLLECTORS):
                    break
            except OSError:
                pass
            time.sleep(0.2)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert "not in an [agent] install" not in output, output
    for collector in COLLECTORS:
        assert f'tuneloop_collector_success{{collector="{collector}"}} 1.0' in text, output


def test_the_hook_does_refuse_the_tuner_stack() -> None:
    """The control: the same launcher cannot start the generator, which needs grafanalib."""
    launcher = LAUNCHER.replace('"agent.cli"', '"tuneloop.generate.cli"')
    done = subprocess.run(
        [sys.executable, "-c", launcher, "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "not in an [agent] install" in done.stderr
