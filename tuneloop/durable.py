"""Durable file writes: what is written survives a crash, and a crash never leaves half a file.

* :func:`atomic_write` writes a temporary file in the same directory, fsyncs it, renames it over
  the target and fsyncs the directory, so a reader sees the old content or the new, never a mix,
  and the rename itself survives power loss.
* :func:`append_line` appends one line (a JSON record, say) and fsyncs before returning: a journal
  entry is on disk before the change it announces.
* :func:`read_lines` reads such a file back and drops a torn last line (a crash mid-append), which
  is the only damage an append-only file can take; a torn line elsewhere is an error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or create in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def append_line(path: Path, line: str) -> None:
    """Append ``line`` (no newline inside) and fsync before returning."""
    if "\n" in line:
        raise ValueError("a journal line must not contain a newline")
    path = Path(path)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


class TornFileError(ValueError):
    """A line other than the last is incomplete: the file was changed by something else."""


def read_lines(path: Path) -> list[str]:
    """The complete lines of an append-only file; a torn (unterminated) last line is dropped."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    if not raw:
        return []
    text = raw.decode("utf-8", errors="strict")
    lines = text.split("\n")
    # A file written only by append_line ends with "\n"; anything after the last one is torn.
    complete = lines[:-1]
    if any(line == "" for line in complete):
        raise TornFileError(f"{path}: empty line inside an append-only file")
    return complete
