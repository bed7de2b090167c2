"""Opening a trial store: schema versions, migrations, and damage that is reported, not repaired.

``tests/fixtures/store/v1.db`` was written by the schema-1 store (before schema versions): an
experiment ``weights`` with an initial snapshot of ``lb``, trial 1 done and promoted, trial 2
rolled back while applying.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tuner import store_schema
from tuner.store import (
    SCHEMA_VERSION,
    StoreDamagedError,
    StoreError,
    StoreVersionError,
    TrialStore,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store" / "v1.db"
V1_TRIAL_COLUMNS = (
    "id, experiment, number, kind, state, params, snapshot, objective, loss, measurements, "
    "valid, feasible, reason, applied, rolled_back, proposed_at, applied_at, finished_at, "
    "updated_at"
)
HINT = "restore it from a backup, or point --state at an empty directory to start afresh"


def raw_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def user_version(path: Path) -> int:
    version = raw_rows(path, "PRAGMA user_version")[0][0]
    assert isinstance(version, int)
    return version


def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "trials.db"
    shutil.copyfile(FIXTURE, path)
    return path


def test_a_schema_1_store_is_migrated_and_reads_back_unchanged(tmp_path):
    path = v1_copy(tmp_path)
    assert user_version(path) == 0  # written before schema versions existed
    trials_before = raw_rows(path, f"SELECT {V1_TRIAL_COLUMNS} FROM trials ORDER BY id")
    snaps_before = raw_rows(path, "SELECT * FROM snapshots")
    store = TrialStore(path)
    assert user_version(path) == SCHEMA_VERSION == 2
    assert raw_rows(path, f"SELECT {V1_TRIAL_COLUMNS} FROM trials ORDER BY id") == trials_before
    assert raw_rows(path, "SELECT * FROM snapshots") == snaps_before
    first, second = store.trials("weights")
    assert (first.state, first.params, first.objective, first.valid) == (
        "done",
        {"a": 70, "b": 30},
        0.25,
        True,
    )
    assert first.measurements == {"p99_seconds": 0.25, "request_rate": 50.0}
    assert (second.state, second.rolled_back, second.snapshot) == (
        "rolled_back",
        True,
        {"lb": {"be/a": 70, "be/b": 30}},
    )
    assert store.snapshots("weights", "initial") == {"lb": {"be/a": 50, "be/b": 50}}
    assert store.initial_snapshot_at("weights") == snaps_before[0][5]  # back-filled
    incumbent = store.incumbent("weights")
    assert incumbent is not None and (incumbent[0].number, incumbent[1]) == (1, 0.25)
    assert store.propose("weights", {"a": 55, "b": 45}, {}).number == 3
    store.close()
    TrialStore(path).close()  # a second open finds nothing to migrate
    assert user_version(path) == 2


def test_a_failing_migration_leaves_the_old_version_whole(tmp_path, monkeypatch):
    path = v1_copy(tmp_path)

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE writer_locks (experiment TEXT PRIMARY KEY)")
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_schema, "MIGRATIONS", (store_schema.MIGRATIONS[0], half_then_fail))
    with pytest.raises(RuntimeError, match="disk full"):
        TrialStore(path)
    assert user_version(path) == 0
    tables = {r[0] for r in raw_rows(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"experiments", "snapshots", "trials"}
    monkeypatch.undo()
    assert len(TrialStore(path).trials("weights")) == 2


def test_a_store_from_a_newer_version_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "trials.db"
    TrialStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreVersionError) as err:
        TrialStore(path)
    assert "written by a newer tuneloop: schema 99, this one knows 2" in str(err.value)
    assert str(path) in str(err.value)
    assert path.read_bytes() == before


def test_a_missing_file_in_an_existing_directory_starts_a_new_store(tmp_path):
    path = tmp_path / "state" / "trials.db"
    path.parent.mkdir()
    TrialStore(path).close()
    assert user_version(path) == SCHEMA_VERSION
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_creating_over_a_store_that_appeared_meanwhile_keeps_it(tmp_path):
    path = tmp_path / "trials.db"
    store = TrialStore(path)
    store.propose("e", {"a": 1}, {})
    store.close()
    store_schema._create(path)  # a second creator that lost the race
    assert [t.params for t in TrialStore(path).trials("e")] == [{"a": 1}]


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(3 * 4096))


def _truncated(path: Path) -> None:
    shutil.copyfile(FIXTURE, path)
    with open(path, "r+b") as handle:
        handle.truncate(FIXTURE.stat().st_size // 2)


def _garbled_page(path: Path) -> None:
    shutil.copyfile(FIXTURE, path)
    with open(path, "r+b") as handle:
        handle.seek(3 * 4096)
        handle.write(b"\xa5" * 4096)


def _not_a_trial_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()


def _no_tables(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE scratch (x INTEGER)")
    conn.execute("DROP TABLE scratch")
    conn.close()


def _lost_a_table(path: Path) -> None:
    TrialStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE writer_locks")
    conn.close()


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (_zero_bytes, r"is empty \(0 bytes\)"),
        (_random_bytes, r"is damaged \(file is not a database\)"),
        (_truncated, r"is damaged \(database disk image is malformed\)"),
        (_garbled_page, "(is damaged|fails its integrity check)"),
        (_not_a_trial_store, "lacks the table.s. experiments, snapshots, trials"),
        (_no_tables, "holds none of the trial store's tables"),
        (_lost_a_table, r"\(schema 2\) lacks the table.s. writer_locks"),
    ],
)
def test_a_damaged_store_is_a_one_line_error_and_is_never_reinitialised(tmp_path, damage, what):
    path = tmp_path / "trials.db"
    damage(path)
    before = path.read_bytes()
    with pytest.raises(StoreDamagedError, match=what) as err:
        TrialStore(path)
    message = str(err.value)
    assert isinstance(err.value, StoreError) and "\n" not in message
    assert message.startswith(f"trial store {path} ") and message.endswith(HINT)
    assert path.read_bytes() == before


def test_a_directory_in_the_stores_place_is_a_clear_error(tmp_path):
    (tmp_path / "trials.db").mkdir()
    with pytest.raises(StoreError, match=r"cannot open trial store .*trials\.db"):
        TrialStore(tmp_path / "trials.db")


def test_the_cli_reports_a_damaged_store_in_one_line(tmp_path, capsys):
    from tuner.cli import main

    (tmp_path / "trials.db").write_bytes(b"")
    assert main(["status", "--state", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: trial store ") and err.count("\n") == 1
    assert "is empty (0 bytes)" in err and HINT in err
    assert (tmp_path / "trials.db").stat().st_size == 0
