"""Durable writes: atomic replace, fsync'd appends, torn last lines dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneloop.durable import TornFileError, append_line, atomic_write, read_lines


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, "old")
    atomic_write(target, b"new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_atomic_write_failure_keeps_the_original(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, "original")
    with pytest.raises(TypeError):
        atomic_write(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "original"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_append_then_read_back(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    append_line(journal, '{"a": 1}')
    append_line(journal, '{"a": 2}')
    assert read_lines(journal) == ['{"a": 1}', '{"a": 2}']


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    append_line(journal, '{"a": 1}')
    with journal.open("a") as handle:
        handle.write('{"a": 2')  # a crash mid-append
    assert read_lines(journal) == ['{"a": 1}']


def test_a_damaged_middle_is_an_error(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text('{"a": 1}\n\n{"a": 2}\n')
    with pytest.raises(TornFileError):
        read_lines(journal)


def test_lines_with_newlines_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="newline"):
        append_line(tmp_path / "j", "a\nb")


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert read_lines(tmp_path / "absent") == []
