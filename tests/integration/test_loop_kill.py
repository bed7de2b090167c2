"""The tuning loop as a real process, killed with SIGKILL at random points and resumed."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.paths import ROOT
from tests.unit.tuner_doubles import file_loop
from tuner.store import IN_FLIGHT, TrialStore


def _wait_for_trial_in_flight(db_path, proc, timeout_s):
    """Poll the store read-only until some trial is in flight (or the process ends)."""
    deadline = time.monotonic() + timeout_s
    query = (
        "SELECT COUNT(*) FROM trials WHERE kind = 'trial' AND state IN "
        f"({','.join('?' * len(IN_FLIGHT))})"
    )
    while time.monotonic() < deadline and proc.poll() is None:
        if db_path.exists():
            try:
                with contextlib.closing(
                    sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.2)
                ) as conn:
                    row = conn.execute(query, IN_FLIGHT).fetchone()
                if row and row[0]:
                    return
            except sqlite3.Error:
                pass  # the schema is being created; look again
        time.sleep(0.005)


@pytest.mark.timeout(150)
def test_kill_minus_nine_loses_no_trial_and_leaves_a_recorded_config(tmp_path):
    """Kill the loop at random points (bounded), resume, and check the store and the system."""
    rng = random.Random(11)
    state = tmp_path / "state"
    state.mkdir()
    (state / "lb.json").write_text(json.dumps({"be/a": 50, "be/b": 50}))
    cmd = [sys.executable, "-m", "tests.unit.tuner_doubles", str(state), "0.03"]
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen(cmd, cwd=ROOT)
        # Start-up time varies with the machine's load: wait until a trial is in flight, then
        # kill at a random point shortly after (inside that trial or the next steps).
        _wait_for_trial_in_flight(state / "trials.db", proc, timeout_s=40)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        if not (state / "trials.db").exists():
            continue
        loop, _, db = file_loop(state)
        try:
            before = db.trials("weights")
            numbers = [t.number for t in before]
            assert numbers == list(range(1, len(numbers) + 1))  # none lost, none duplicated
            in_flight = [t for t in before if t.state in IN_FLIGHT]
            assert len(in_flight) <= 1
            loop.resume()  # what the next start does first
            trials = db.trials("weights")
            assert all(t.final for t in trials) and len(trials) == len(before)
            current = json.loads((state / "lb.json").read_text())
            if in_flight:  # the interrupted trial's recorded snapshot is back in place
                assert current == in_flight[0].snapshot["lb"]
            recorded = [{"be/a": t.params["a"], "be/b": t.params["b"]} for t in trials]
            recorded += [t.snapshot["lb"] for t in trials if t.snapshot]
            recorded += list(db.snapshots("weights", "initial").values())
            assert current in recorded or (not trials and current == {"be/a": 50, "be/b": 50})
        finally:
            db.close()
    assert kills >= 1
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=60)  # resume and finish
    db = TrialStore(state / "trials.db")
    trials = db.trials("weights")
    assert all(t.final for t in trials)
    assert len([t for t in trials if t.kind == "trial"]) >= 8
    interrupted = [t for t in trials if t.reason and "interrupted" in t.reason]
    assert 1 <= len(interrupted) <= kills  # the kills landed mid-trial and were rolled back
    inc = db.incumbent("weights")
    current = json.loads((state / "lb.json").read_text())
    assert inc is not None and current == {"be/a": inc[0].params["a"], "be/b": inc[0].params["b"]}
    db.close()
