"""Host file reads: regular files only, bounded, never blocking; failures counted by reason."""

from __future__ import annotations

import os
import socket

import pytest

from agent.hostfs import HostFileError, ReadErrors, read_bytes, read_errors_family, read_text


def test_a_small_regular_file_is_read(tmp_path):
    (tmp_path / "f").write_bytes(b"42\n")
    assert read_text(tmp_path / "f") == "42\n"


def test_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(HostFileError, match="refusing to read a FIFO") as err:
        read_bytes(tmp_path / "fifo")
    assert err.value.reason == "not_regular"


def test_a_socket_a_device_and_a_directory_are_refused(tmp_path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(HostFileError, match="a socket"):
            read_bytes(tmp_path / "sock")
    with pytest.raises(HostFileError, match="a character device"):
        read_bytes("/dev/zero")  # read whole, it would never end
    with pytest.raises(HostFileError, match="a directory") as err:
        read_bytes(tmp_path)
    assert err.value.reason == "not_regular"


def test_a_file_over_the_bound_is_refused_not_truncated(tmp_path):
    (tmp_path / "big").write_bytes(b"1" * 5000)
    assert len(read_bytes(tmp_path / "big", max_bytes=5000)) == 5000
    with pytest.raises(HostFileError, match="more than 4999 bytes") as err:
        read_bytes(tmp_path / "big", max_bytes=4999)
    assert err.value.reason == "too_large"


def test_missing_and_unreadable_have_their_own_reasons(tmp_path):
    with pytest.raises(HostFileError) as err:
        read_bytes(tmp_path / "absent")
    assert err.value.reason == "missing"
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    with pytest.raises(HostFileError) as err:
        read_bytes(tmp_path / "dangling")
    assert err.value.reason == "missing"


def test_read_errors_count_by_reason_and_warn_once_per_path(tmp_path, caplog):
    errors = ReadErrors("net")
    assert set(errors.counts().values()) == {0}  # every reason starts at 0
    for _ in range(3):
        errors.count("not_regular", tmp_path / "a", "refusing to read a FIFO")
    errors.count("no-such-reason", tmp_path / "b", "odd")
    assert errors.counts()["not_regular"] == 3
    assert errors.counts()["unreadable"] == 1
    assert caplog.text.count("refusing to read a FIFO") == 1
    family = read_errors_family([errors, ReadErrors("numa")])
    samples = {
        (s.labels["collector"], s.labels["reason"]): s.value
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert samples[("net", "not_regular")] == 3
    assert samples[("numa", "not_regular")] == 0
    assert len(samples) == 2 * len(errors.counts())
