"""One writer per experiment: live locks refuse, expired ones are taken over, lost ones fence."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.tuner_doubles import FakeClock
from tuner.store import LockLostError, StoreError, TrialStore, WriterLockedError

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC).timestamp()


def two_stores(tmp_path: Path) -> tuple[TrialStore, TrialStore, FakeClock]:
    clock = FakeClock(start=START)
    path = tmp_path / "trials.db"
    return TrialStore(path, clock), TrialStore(path, clock), clock


def lock_row(store: TrialStore, experiment: str) -> dict[str, object]:
    row = store._db.execute(
        "SELECT * FROM writer_locks WHERE experiment = ?", (experiment,)
    ).fetchone()
    return dict(row)


def test_a_live_lock_refuses_a_second_writer_and_names_its_holder(tmp_path):
    first, second, clock = two_stores(tmp_path)
    lock = first.acquire_writer("w", holder="host:1234", ttl_s=60)
    assert (lock.holder, lock.token, lock.started_at) == ("host:1234", 1, START)
    clock.sleep(50)
    lock.heartbeat()
    clock.sleep(50)  # 100 s since the start, 50 since the heartbeat: still live
    with pytest.raises(WriterLockedError) as err:
        second.acquire_writer("w", holder="host:99")
    assert "experiment 'w' is being tuned by host:1234 since 2026-12-01T10:00:00Z" in str(err.value)
    assert isinstance(err.value, StoreError)
    row = lock_row(first, "w")
    assert (row["holder"], row["token"], row["heartbeat_at"]) == ("host:1234", 1, START + 50)
    second.acquire_writer("other", holder="host:99").release()  # other experiments are free


def test_an_expired_lock_is_taken_over_and_the_old_holder_cannot_write(tmp_path, caplog):
    first, second, clock = two_stores(tmp_path)
    old = first.acquire_writer("w", holder="host:1234", ttl_s=60)
    first.ensure_experiment("w", "name: w")
    trial = first.propose("w", {"a": 1}, {})
    clock.sleep(61)
    with caplog.at_level(logging.WARNING, logger="tuner.writer_lock"):
        new = second.acquire_writer("w", holder="host:99", ttl_s=60)
    assert new.token == 2 and "taking over the expired or orphaned writer lock" in caplog.text
    assert "from host:1234" in caplog.text

    refused = [
        lambda: first.propose("w", {"a": 2}, {}),
        lambda: first.transition(trial.id, "applying"),
        lambda: first.set_incumbent("w", trial.id, 0.5),
        lambda: first.save_snapshot("w", "initial", "lb", {"be/a": 1}),
        lambda: first.ensure_experiment("w", "name: w\nchanged: true"),
        old.heartbeat,
    ]
    for write in refused:
        with pytest.raises(LockLostError, match=r"token 1\) is lost, taken over by host:99"):
            write()
    assert [(t.number, t.state) for t in second.trials("w")] == [(1, "proposed")]
    assert second.snapshots("w", "initial") == {} and second.incumbent("w") is None
    assert second.experiment_spec("w") == "name: w"
    assert old.release() is False  # the lost lock is not released under the new holder
    assert lock_row(second, "w")["holder"] == "host:99"
    second.transition(trial.id, "rolled_back", reason="taken over")  # the new holder writes
    first.propose("other", {}, {})  # experiments it never locked are not fenced


def test_an_expired_lock_that_nobody_took_is_still_its_holders(tmp_path):
    first, second, clock = two_stores(tmp_path)
    lock = first.acquire_writer("w", holder="host:1", ttl_s=10)
    clock.sleep(30)
    lock.heartbeat()
    first.propose("w", {}, {})
    with pytest.raises(WriterLockedError):
        second.acquire_writer("w", holder="host:2")


def test_release_frees_the_lock_and_the_token_keeps_growing(tmp_path):
    first, second, _clock = two_stores(tmp_path)
    with first.acquire_writer("w", holder="host:1") as lock:
        assert first.acquire_writer("w") is lock  # the holder asking again gets its lock
    assert lock.released and lock_row(first, "w")["holder"] is None
    with pytest.raises(StoreError, match="heartbeat on a released lock"):
        lock.heartbeat()
    first.propose("w", {}, {})  # no longer a holder: not fenced
    again = second.acquire_writer("w", holder="host:2")
    assert again.token == 2
    assert again.release() and not again.release()


def test_a_lock_cleared_by_hand_fences_its_holder(tmp_path):
    first, _second, _clock = two_stores(tmp_path)
    first.acquire_writer("w", holder="host:1")
    first._db.execute("UPDATE writer_locks SET holder = NULL")  # an operator freed it
    with pytest.raises(LockLostError, match=r"token 1\) is lost, it was released"):
        first.propose("w", {}, {})
    first._db.execute("DELETE FROM writer_locks")
    with pytest.raises(LockLostError, match="its lock row is gone"):
        first.propose("w", {}, {})
    assert first.trials("w") == []


def test_the_holder_defaults_to_host_and_pid_and_ttl_must_be_positive(tmp_path):
    store = TrialStore(tmp_path / "t.db")
    assert store.acquire_writer("w").holder == f"{socket.gethostname()}:{os.getpid()}"
    with pytest.raises(StoreError, match="ttl_s must be positive"):
        store.acquire_writer("x", ttl_s=0)


def test_a_second_process_cannot_acquire_while_this_one_holds(tmp_path):
    path = tmp_path / "trials.db"
    store = TrialStore(path)
    with store.acquire_writer("w", ttl_s=600):
        script = textwrap.dedent(
            f"""
            import sys
            from tuner.store import TrialStore, WriterLockedError
            try:
                TrialStore({str(path)!r}).acquire_writer("w")
            except WriterLockedError as exc:
                print(exc)
                sys.exit(3)
            """
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 3, done.stderr
    holder = f"{socket.gethostname()}:{os.getpid()}"
    assert f"experiment 'w' is being tuned by {holder} since " in done.stdout


def test_a_holder_that_lost_its_lock_may_claim_it_again_with_a_new_token(tmp_path):
    first, second, clock = two_stores(tmp_path)
    first.acquire_writer("w", holder="host:1", ttl_s=10)
    clock.sleep(11)
    taken = second.acquire_writer("w", holder="host:2", ttl_s=10)
    with pytest.raises(WriterLockedError, match="being tuned by host:2"):
        first.acquire_writer("w", holder="host:1", ttl_s=10)
    with pytest.raises(LockLostError):  # still fenced after the refused claim
        first.propose("w", {}, {})
    taken.release()
    again = first.acquire_writer("w", holder="host:1", ttl_s=10)
    assert again.token == 3 and first.propose("w", {}, {}).number == 1


def test_closing_a_store_releases_its_locks(tmp_path):
    first, second, _clock = two_stores(tmp_path)
    first.acquire_writer("w", holder="host:1")
    first.close()
    assert second.acquire_writer("w", holder="host:2").token == 2


def test_a_lock_of_a_process_of_this_host_that_is_gone_is_taken_at_once(tmp_path):
    first, second, _ = two_stores(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    here = socket.gethostname()
    first.acquire_writer("w", holder=f"{here}:{gone}", ttl_s=600)
    taken = second.acquire_writer("w", holder=f"{here}:{os.getpid()}", ttl_s=600)
    assert taken.token == 2  # no wait for the ttl: that tuner was killed
    with pytest.raises(WriterLockedError):  # a live process of this host holds it now
        first.acquire_writer("w", holder=f"{here}:{gone}")
    first.acquire_writer("x", holder=f"elsewhere:{gone}", ttl_s=600)
    with pytest.raises(WriterLockedError):  # another host's process is never judged from here
        second.acquire_writer("x", holder=f"{here}:{os.getpid()}")
