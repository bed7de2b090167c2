"""Crash recovery and failed rollbacks: no entry point ever loses an original value."""

from __future__ import annotations

import fcntl
import io
import os
import shutil
from pathlib import Path

import pytest

from agent.nodetune.cli import main, watch
from agent.nodetune.crashpoints import STOP_AT_ENV, StopAt, checkpoint_from_env
from agent.nodetune.desired import Desired, load_desired, parse_desired
from agent.nodetune.journal import history, load, locked
from agent.nodetune.reconciler import Reconciler
from agent.nodetune.sysctl import SysctlError, SysctlFS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "nodetune"
RMEM = "net.ipv4.tcp_rmem"
MTU = "net.ipv4.tcp_mtu_probing"


class Crash(BaseException):
    """A simulated kill: nothing after the checkpoint runs, no handler catches it."""


@pytest.fixture
def procfs(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "proc", tmp_path / "proc"))


def values(procfs: Path) -> dict[str, str]:
    root = procfs / "sys"
    return {
        ".".join(p.relative_to(root).parts): " ".join(p.read_text().split())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def gen7() -> Desired:
    return load_desired(FIXTURES / "desired.yaml")  # rmem, wmem, rmem_max, mtu_probing


def gen8() -> Desired:
    return parse_desired({"generation": 8, "sysctls": {RMEM: "4096 131072 33554432"}})


class RefusingFS(SysctlFS):
    """A kernel that refuses writes to ``refuse`` while it is set."""

    def __init__(self, procfs: Path, refuse: set[str]) -> None:
        super().__init__(procfs)
        self.refuse = refuse

    def write(self, key: str, value: str) -> None:
        if key in self.refuse:
            raise SysctlError(1, f"{key}: cannot write: Operation not permitted")
        super().write(key, value)


def crash_at(point: int) -> StopAt:
    """A checkpoint that raises Crash at the ``point``-th call."""

    class Raise(StopAt):
        def __call__(self, name: str) -> None:
            self.seen += 1
            if self.seen == self.stop_at:
                raise Crash(name)

    return Raise(point)


def count_points(procfs: Path, journal: Path) -> int:
    counter = crash_at(10_000)
    Reconciler(procfs, journal, checkpoint=counter).apply(gen7())
    return counter.seen


def test_reproduced_fault_6_second_apply_recovers_first(procfs: Path, tmp_path: Path) -> None:
    originals = values(procfs)
    journal = tmp_path / "j.json"
    with pytest.raises(Crash):
        Reconciler(procfs, journal, checkpoint=crash_at(6)).apply(gen7())
    assert values(procfs) != originals and load(journal).state == "applying"

    again = Reconciler(procfs, journal).apply(gen7())  # the same one-shot apply, not watch
    assert again.recovery is not None and again.recovery.rolled_back
    assert again.skipped.startswith("generation 7 is failed")
    assert values(procfs) == originals
    Reconciler(procfs, journal).apply(gen8())
    assert Reconciler(procfs, journal).rollback().ok
    assert values(procfs) == originals
    assert load(journal).failures == {"interrupted": 1}


def test_every_crash_point_of_an_apply_loses_no_original(procfs: Path, tmp_path: Path) -> None:
    originals = values(procfs)
    points = count_points(Path(shutil.copytree(procfs, tmp_path / "count")), tmp_path / "c.json")
    assert points >= 10  # journal applying, before/after each of 4 writes, journal applied
    for point in range(1, points + 1):
        tree = Path(shutil.copytree(procfs, tmp_path / f"p{point}"))
        journal = tmp_path / f"p{point}.json"
        with pytest.raises(Crash):
            Reconciler(tree, journal, checkpoint=crash_at(point)).apply(gen7())
        Reconciler(tree, journal).apply(gen8())
        Reconciler(tree, journal).rollback(baseline=True)
        assert values(tree) == originals, f"crash point {point}"
        assert load(journal).state == "rolled_back"


def test_crash_inside_recovery_is_recovered_next_time(procfs: Path, tmp_path: Path) -> None:
    originals = values(procfs)
    journal = tmp_path / "j.json"
    with pytest.raises(Crash):
        Reconciler(procfs, journal, checkpoint=crash_at(8)).apply(gen7())
    with pytest.raises(Crash):  # killed again, in the middle of its own recovery
        Reconciler(procfs, journal, checkpoint=crash_at(3)).recover()
    assert load(journal).state == "rolling_back"
    assert Reconciler(procfs, journal).rollback().ok
    assert values(procfs) == originals


def test_reproduced_fault_7_failed_rollback_says_so_and_is_retried(
    procfs: Path, tmp_path: Path
) -> None:
    originals = values(procfs)
    journal = tmp_path / "j.json"
    assert Reconciler(procfs, journal).apply(gen7()).ok
    stuck = Reconciler(procfs, journal)
    stuck.fs = RefusingFS(procfs, {MTU})
    result = stuck.rollback()
    assert not result.ok and not result.rolled_back and MTU in result.error
    state = load(journal)
    assert state.state == "rollback_failed" and state.restore == {MTU: "0"}
    assert state.failures == {"rollback": 1}
    assert values(procfs)[MTU] == "1" and values(procfs)[RMEM] == originals[RMEM]

    out = io.StringIO()  # the next entry (here the watch loop) retries the restore first
    watch(Reconciler(procfs, journal), FIXTURES / "missing.yaml", 1.0, max_iterations=1, out=out)
    assert "recovered net.ipv4.tcp_mtu_probing: restored" in out.getvalue()
    assert values(procfs) == originals
    assert load(journal).state == "rolled_back" and load(journal).restore == {}


def test_new_generation_over_a_failed_rollback_keeps_the_originals(
    procfs: Path, tmp_path: Path
) -> None:
    originals = values(procfs)
    journal = tmp_path / "j.json"
    refuse: set[str] = set()
    rec = Reconciler(procfs, journal)
    rec.fs = RefusingFS(procfs, refuse)
    seven = gen7()
    late = parse_desired({"generation": 7, "sysctls": {**seven.sysctls, MTU: "2"}})
    refuse.add(MTU)
    first = rec.apply(late)  # mtu write refused: roll back rmem, wmem, rmem_max ...
    assert not first.ok and first.rolled_back
    assert Reconciler(procfs, journal).apply(seven).skipped  # generation 7 is pinned as failed
    assert rec.apply(seven, force=True).ok is False  # mtu still refused
    refuse.clear()
    assert rec.apply(seven, force=True).ok
    refuse.update({RMEM})  # now a rollback fails half way
    assert not rec.rollback().ok and load(journal).state == "rollback_failed"
    half = values(procfs)
    nine = parse_desired({"generation": 9, "sysctls": {MTU: "2"}})
    applied = rec.apply(nine)  # the retried restore fails again; generation 9 still applies
    assert applied.recovery is not None and not applied.recovery.ok
    assert not applied.error and applied.written == [MTU]
    state = load(journal)
    assert state.found == {MTU: half[MTU]}  # what generation 9 found ...
    assert state.snapshot[RMEM] == originals[RMEM]  # ... but the originals are kept
    assert state.snapshot[MTU] == originals[MTU]
    refuse.clear()
    assert Reconciler(procfs, journal).rollback().ok
    assert values(procfs) == originals


def test_journal_is_durable_before_each_write(procfs: Path, tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    seen: list[tuple[str, str, dict[str, str]]] = []

    def inspect(name: str) -> None:
        if name.startswith("before write"):
            state = load(journal)
            seen.append((name, state.state, dict(state.snapshot)))

    Reconciler(procfs, journal, checkpoint=inspect).apply(gen7())
    assert len(seen) == 4
    assert all(state == "applying" and name.split()[-1] in snap for name, state, snap in seen)
    events = history(journal)
    assert [e["state"] for e in events] == ["applying", "applied"]
    assert events[0]["found"][RMEM] == "4096 131072 6291456"


def test_stop_at_is_read_from_the_environment() -> None:
    assert not isinstance(checkpoint_from_env({}), StopAt)
    assert isinstance(checkpoint_from_env({STOP_AT_ENV: "3"}), StopAt)
    with pytest.raises(ValueError, match=STOP_AT_ENV):
        checkpoint_from_env({STOP_AT_ENV: "soon"})
    with pytest.raises(ValueError, match="positive"):
        checkpoint_from_env({STOP_AT_ENV: "0"})


def test_cli_rollback_exits_1_and_reports_keys_left(procfs: Path, tmp_path: Path, capsys) -> None:
    common = ["--procfs", str(procfs), "--journal", str(tmp_path / "j.json")]
    assert main(["nodetune", "apply", "--desired", str(FIXTURES / "desired.yaml"), *common]) == 0
    mtu_file = procfs / "sys/net/ipv4/tcp_mtu_probing"
    mtu_file.unlink()
    mtu_file.mkdir()  # refuses reads and writes, even to root
    assert main(["nodetune", "rollback", *common]) == 1
    out = capsys.readouterr().out
    assert "NOT rolled back" in out and "not restored: net.ipv4.tcp_mtu_probing" in out
    assert load(tmp_path / "j.json").state == "rollback_failed"
    mtu_file.rmdir()
    mtu_file.write_text("1\n")
    assert main(["nodetune", "rollback", *common]) == 0
    assert "recovered net.ipv4.tcp_mtu_probing: restored" in capsys.readouterr().out
    assert values(procfs)[MTU] == "0"


def test_entry_points_hold_the_journal_lock(procfs: Path, tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    held: list[bool] = []

    def probe(name: str) -> None:
        fd = os.open(tmp_path / "j.json.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)  # another open file holds it: the reconciler does
        finally:
            os.close(fd)

    Reconciler(procfs, journal, checkpoint=probe).apply(gen7())
    Reconciler(procfs, journal, checkpoint=probe).rollback()
    assert held and all(held)
    with locked(journal):  # and a second writer waits for it: here, it is refused at once
        fd = os.open(tmp_path / "j.json.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
