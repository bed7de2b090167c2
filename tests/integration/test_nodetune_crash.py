"""kill -9 the one-shot `nodetune apply` (and `rollback`) at every crash point: no original lost.

Each run is a real process against a copy of the fixture /proc/sys tree. It stops itself at the
N-th checkpoint (``TUNELOOP_NODETUNE_STOP_AT``), the test kills it with SIGKILL, then runs the
next entry points in-process and compares every value with the tree's originals. The loop over
points ends when a run finishes without reaching its point; it is bounded in count and time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.nodetune.cli import main
from agent.nodetune.crashpoints import STOP_AT_ENV
from agent.nodetune.journal import load

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "nodetune"
MAX_POINTS = 40
STOP_TIMEOUT_S = 60.0


def values(procfs: Path) -> dict[str, str]:
    root = procfs / "sys"
    return {
        ".".join(p.relative_to(root).parts): " ".join(p.read_text().split())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_gen8(path: Path) -> Path:
    path.write_text("generation: 8\nsysctls:\n  net.ipv4.tcp_rmem: 4096 131072 33554432\n")
    return path


def run_until_point(argv: list[str], point: int) -> bool:
    """Run the CLI; True when it stopped at ``point`` and was killed, False when it finished."""
    env = {**os.environ, STOP_AT_ENV: str(point), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.nodetune.cli", "nodetune", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + STOP_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            pid, status = os.waitpid(proc.pid, os.WUNTRACED | os.WNOHANG)
            if pid == 0:
                time.sleep(0.02)
                continue
            if os.WIFSTOPPED(status):
                os.kill(proc.pid, signal.SIGKILL)  # kill -9 while it sits at the point
                os.waitpid(proc.pid, 0)
                proc.returncode = -signal.SIGKILL
                return True
            proc.returncode = os.waitstatus_to_exitcode(status)
            assert proc.returncode in (0, 1), proc.stderr.read() if proc.stderr else ""
            return False
        raise AssertionError(f"point {point}: the process neither stopped nor ended in time")
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def crash_each_point(tmp_path: Path, prepare: list[list[str]], crashed: list[str]) -> list[Path]:
    """For N = 1, 2, ...: a fresh tree, ``prepare`` in-process, ``crashed`` killed at point N."""
    trees: list[Path] = []
    for point in range(1, MAX_POINTS + 1):
        work = tmp_path / f"p{point}"
        procfs = Path(shutil.copytree(FIXTURES / "proc", work / "proc"))
        common = ["--procfs", str(procfs), "--journal", str(work / "journal.json")]
        for argv in prepare:
            assert main(["nodetune", *argv, *common]) == 0
        if not run_until_point([*crashed, *common], point):
            assert point > 5, "too few crash points were reached"
            return trees
        trees.append(work)
    raise AssertionError(f"more than {MAX_POINTS} crash points")


def common_args(work: Path) -> list[str]:
    return ["--procfs", str(work / "proc"), "--journal", str(work / "journal.json")]


def test_kill_9_at_every_point_of_an_apply_then_apply_and_rollback(tmp_path: Path) -> None:
    originals = values(FIXTURES / "proc")
    desired = str(FIXTURES / "desired.yaml")
    gen8 = str(write_gen8(tmp_path / "gen8.yaml"))
    lost: list[str] = []
    trees = crash_each_point(tmp_path, [], ["apply", "--desired", desired])
    for work in trees:
        common = common_args(work)
        assert main(["nodetune", "apply", "--desired", desired, *common]) == 0  # once more
        assert load(work / "journal.json").state in ("applied", "failed")
        assert main(["nodetune", "rollback", *common]) == 0
        after = values(work / "proc")
        lost += [f"{work.name}:{k}" for k, v in originals.items() if after[k] != v]
        assert main(["nodetune", "apply", "--desired", gen8, *common]) == 0
        assert main(["nodetune", "rollback", "--baseline", *common]) == 0
        after = values(work / "proc")
        lost += [f"{work.name}:{k} (baseline)" for k, v in originals.items() if after[k] != v]
    assert len(trees) >= 10
    assert lost == []


def test_kill_9_mid_apply_then_plain_rollback_restores_everything(tmp_path: Path) -> None:
    originals = values(FIXTURES / "proc")
    desired = str(FIXTURES / "desired.yaml")
    trees = crash_each_point(tmp_path, [], ["apply", "--desired", desired])
    for work in trees:
        assert main(["nodetune", "rollback", *common_args(work)]) == 0
        assert values(work / "proc") == originals, work.name
        assert load(work / "journal.json").state == "rolled_back"


def test_kill_9_at_every_point_of_a_rollback(tmp_path: Path) -> None:
    originals = values(FIXTURES / "proc")
    desired = str(FIXTURES / "desired.yaml")
    trees = crash_each_point(tmp_path, [["apply", "--desired", desired]], ["rollback"])
    for work in trees:
        assert main(["nodetune", "rollback", *common_args(work)]) == 0
        assert values(work / "proc") == originals, work.name
