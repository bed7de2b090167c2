"""Reconciler: plan, apply, verify, roll back, resume, dry run, idempotence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.nodetune.desired import Desired, DesiredStateError, parse_desired
from agent.nodetune.journal import JournalError, load
from agent.nodetune.reconciler import Reconciler
from agent.nodetune.sysctl import SysctlError, SysctlFS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "nodetune"
RMEM = "net.ipv4.tcp_rmem"
WMEM = "net.ipv4.tcp_wmem"
CC = "net.ipv4.tcp_congestion_control"


@pytest.fixture
def procfs(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "proc", tmp_path / "proc"))


def desired(generation: int, **sysctls: str) -> Desired:
    mapping = {k.replace("__", "."): v for k, v in sysctls.items()}
    return parse_desired({"generation": generation, "sysctls": mapping})


def big(generation: int = 1) -> Desired:
    return parse_desired(
        {
            "generation": generation,
            "sysctls": {RMEM: "4096 131072 33554432", WMEM: "4096 65536 33554432", CC: "reno"},
        }
    )


def snapshot_tree(procfs: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(procfs)): (p.read_text(), p.stat().st_mtime_ns)
        for p in sorted(procfs.rglob("*"))
        if p.is_file()
    }


def value(procfs: Path, key: str) -> str:
    return (procfs / "sys" / Path(*key.split("."))).read_text().strip()


class FailingFS(SysctlFS):
    """A kernel that refuses (write) or silently clamps (verify) one key, or dies midway."""

    def __init__(self, procfs: Path, key: str, mode: str) -> None:
        super().__init__(procfs)
        self.key, self.mode, self.writes = key, mode, 0

    def write(self, key: str, value: str) -> None:
        self.writes += 1
        if key == self.key and self.mode == "write":
            raise SysctlError(22, f"{key}: cannot write: Invalid argument")
        if key == self.key and self.mode == "die":
            raise SystemExit("killed midway")
        if key == self.key and self.mode == "clamp" and int(value.split()[-1]) > 8388608:
            value = " ".join([*value.split()[:-1], "8388608"])
        super().write(key, value)


def test_plan_lists_only_differences(procfs: Path, tmp_path: Path) -> None:
    rec = Reconciler(procfs, tmp_path / "j.json")
    changes = rec.plan(
        desired(
            1, net__ipv4__tcp_rmem="4096 131072 6291456", net__ipv4__tcp_wmem="4096 16384 8388608"
        )
    )
    assert [(c.key, c.current, c.desired) for c in changes] == [
        (WMEM, "4096 16384 4194304", "4096 16384 8388608")
    ]


def test_apply_writes_verifies_and_journals(procfs: Path, tmp_path: Path) -> None:
    journal_path = tmp_path / "state" / "j.json"
    rec = Reconciler(procfs, journal_path, clock=lambda: 1234.5)
    result = rec.apply(big(5))
    assert result.ok and result.written == [RMEM, WMEM, CC]
    assert value(procfs, RMEM) == "4096 131072 33554432"
    assert value(procfs, CC) == "reno"
    journal = load(journal_path)
    assert journal.state == "applied"
    assert journal.applied_generation == 5
    assert journal.last_apply_timestamp == 1234.5
    assert journal.snapshot == {
        RMEM: "4096 131072 6291456",
        WMEM: "4096 16384 4194304",
        CC: "cubic",
    }
    assert journal.baseline == journal.snapshot


def test_same_generation_twice_writes_nothing(procfs: Path, tmp_path: Path) -> None:
    journal_path = tmp_path / "j.json"
    rec = Reconciler(procfs, journal_path)
    rec.apply(big(5))
    before = snapshot_tree(procfs), journal_path.stat().st_mtime_ns, journal_path.read_text()
    again = rec.apply(big(5))
    assert again.ok and again.changes == [] and again.skipped == "already applied"
    assert (
        snapshot_tree(procfs),
        journal_path.stat().st_mtime_ns,
        journal_path.read_text(),
    ) == before


def test_drift_is_corrected(procfs: Path, tmp_path: Path) -> None:
    rec = Reconciler(procfs, tmp_path / "j.json")
    rec.apply(big(5))
    (procfs / "sys/net/ipv4/tcp_rmem").write_text("4096\t87380\t6291456\n")
    result = rec.apply(big(5))
    assert result.written == [RMEM]
    assert value(procfs, RMEM) == "4096 131072 33554432"


def test_dry_run_writes_nothing_not_even_the_journal(procfs: Path, tmp_path: Path) -> None:
    before = snapshot_tree(procfs)
    rec = Reconciler(procfs, tmp_path / "j.json", dry_run=True)
    result = rec.apply(big(5))
    assert result.dry_run and [c.key for c in result.changes] == [RMEM, WMEM, CC]
    assert snapshot_tree(procfs) == before
    assert not (tmp_path / "j.json").exists()


def test_unavailable_congestion_control_rejected_before_any_write(
    procfs: Path, tmp_path: Path
) -> None:
    before = snapshot_tree(procfs)
    rec = Reconciler(procfs, tmp_path / "j.json")
    state = desired(
        2, net__ipv4__tcp_rmem="4096 65536 65536", net__ipv4__tcp_congestion_control="bbr"
    )
    with pytest.raises(DesiredStateError) as err:
        rec.apply(state)
    assert "net.ipv4.tcp_congestion_control: 'bbr' is not available" in str(err.value)
    assert "reno" in str(err.value) and "cubic" in str(err.value)
    assert snapshot_tree(procfs) == before
    assert load(tmp_path / "j.json").failures == {"validation": 1}


def test_missing_key_on_target_rejected(procfs: Path, tmp_path: Path) -> None:
    (procfs / "sys/net/core/netdev_max_backlog").unlink()
    rec = Reconciler(procfs, tmp_path / "j.json")
    with pytest.raises(DesiredStateError, match=r"net\.core\.netdev_max_backlog: not present at"):
        rec.plan(desired(1, net__core__netdev_max_backlog="2000"))


@pytest.mark.parametrize(("mode", "reason"), [("write", "write"), ("clamp", "verify")])
def test_failure_rolls_back_written_keys(
    procfs: Path, tmp_path: Path, mode: str, reason: str
) -> None:
    rec = Reconciler(procfs, tmp_path / "j.json")
    rec.fs = FailingFS(procfs, WMEM, mode)
    before = snapshot_tree(procfs)
    result = rec.apply(big(6))
    assert not result.ok and result.rolled_back
    assert WMEM in result.error
    after = snapshot_tree(procfs)
    assert {k: v[0].split() for k, v in after.items()} == {
        k: v[0].split() for k, v in before.items()
    }
    journal = load(tmp_path / "j.json")
    assert journal.state == "failed" and journal.failures == {reason: 1}
    assert journal.applied_generation is None
    # the failed generation is not retried on its own; force or a new generation applies it
    assert rec.apply(big(6)).skipped.startswith("generation 6 is failed")
    rec.fs = SysctlFS(procfs)
    assert rec.apply(big(6), force=True).ok
    assert value(procfs, WMEM) == "4096 65536 33554432"


def test_rollback_restores_snapshot_and_pins_generation(procfs: Path, tmp_path: Path) -> None:
    rec = Reconciler(procfs, tmp_path / "j.json")
    rec.apply(desired(1, net__ipv4__tcp_rmem="4096 131072 8388608"))
    rec.apply(desired(2, net__ipv4__tcp_rmem="4096 131072 16777216"))
    result = rec.rollback()
    assert result.ok and result.written == [RMEM]
    assert value(procfs, RMEM) == "4096 131072 8388608"
    journal = load(tmp_path / "j.json")
    assert journal.state == "rolled_back" and journal.applied_generation == 1
    assert rec.apply(desired(2, net__ipv4__tcp_rmem="4096 131072 16777216")).skipped
    assert value(procfs, RMEM) == "4096 131072 8388608"
    assert rec.rollback(baseline=True).written == [RMEM]
    assert value(procfs, RMEM) == "4096 131072 6291456"
    assert rec.apply(desired(3, net__ipv4__tcp_rmem="4096 131072 16777216")).written == [RMEM]


def test_rollback_dry_run_and_empty(procfs: Path, tmp_path: Path) -> None:
    assert Reconciler(procfs, tmp_path / "j.json").rollback().skipped == "nothing to roll back"
    Reconciler(procfs, tmp_path / "j.json").apply(big(1))
    before = snapshot_tree(procfs), (tmp_path / "j.json").read_text()
    result = Reconciler(procfs, tmp_path / "j.json", dry_run=True).rollback()
    assert sorted(c.key for c in result.changes) == sorted([RMEM, WMEM, CC])
    assert (snapshot_tree(procfs), (tmp_path / "j.json").read_text()) == before


def test_resume_rolls_back_an_interrupted_apply(procfs: Path, tmp_path: Path) -> None:
    rec = Reconciler(procfs, tmp_path / "j.json")
    rec.fs = FailingFS(procfs, CC, "die")
    with pytest.raises(SystemExit):
        rec.apply(big(9))
    assert load(tmp_path / "j.json").state == "applying"
    assert value(procfs, RMEM) == "4096 131072 33554432"  # half applied

    restarted = Reconciler(procfs, tmp_path / "j.json")
    result = restarted.recover()
    assert result.rolled_back and set(result.written) == {RMEM, WMEM}
    assert value(procfs, RMEM) == "4096 131072 6291456"
    assert value(procfs, WMEM) == "4096 16384 4194304"
    journal = load(tmp_path / "j.json")
    assert journal.state == "failed" and journal.failures == {"interrupted": 1}
    assert restarted.recover().skipped == "journal state failed"


def test_corrupt_journal_is_an_error_naming_the_file(procfs: Path, tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text("{not json")
    with pytest.raises(JournalError, match=r"j\.json: journal is not valid JSON"):
        Reconciler(procfs, path).apply(big(1))
    path.write_text(json.dumps({"version": 1, "state": "exploded"}))
    with pytest.raises(JournalError, match="unknown state 'exploded'"):
        Reconciler(procfs, path).rollback()
    path.write_text(json.dumps({"version": 1, "snapshot": {RMEM: 5}}))
    with pytest.raises(JournalError, match="snapshot must map keys to strings"):
        Reconciler(procfs, path).rollback()


def test_namespace_target_rejects_global_keys(procfs: Path, tmp_path: Path) -> None:
    rec = Reconciler(procfs, tmp_path / "j.json", netns=Path("/run/netns/none"))
    with pytest.raises(DesiredStateError, match=r"net\.core\.rmem_max: global sysctl"):
        rec.plan(desired(1, net__core__rmem_max="8388608"))
