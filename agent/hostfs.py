"""Bounded, non-blocking reads of sysfs and procfs files, and the count of what failed.

Every collector reads host files through :func:`read_text`, because a host tree is input the
agent does not control: a FIFO in place of a counter would block a plain ``read()`` forever, a
character device can have side effects on open, and a huge file read whole costs its size in
memory on every collection.

Design decisions:

- The path is ``stat``-ed first and anything but a regular file is refused before it is opened
  (reason ``not_regular``); the file is then opened with ``O_NONBLOCK`` and ``fstat``-ed again,
  so a file swapped for a FIFO between the two calls still cannot block the read.
- At most ``max_bytes`` are read (64 KiB by default: the largest sysfs attribute is one page and
  the procfs files the agent reads are a few KiB); more is reason ``too_large``, never truncated
  silently. sysfs reports a size of 4096 and procfs 0 whatever they hold, so the limit is
  enforced while reading, never from ``st_size``.
- :class:`ReadErrors` counts failures per reason in
  ``tuneloop_collector_read_errors_total{collector,reason}`` (every reason starts at 0, so
  ``rate()`` works from the first failure) and logs each failing path once at warning. The
  scheduler renders one family for all collectors, beside ``tuneloop_collector_success``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, Metric

from tuneloop.catalog import agent_health

log = logging.getLogger(__name__)

MAX_READ_BYTES = 64 * 1024
_CHUNK = 16 * 1024
READ_REASONS = ("missing", "not_regular", "too_large", "unreadable", "malformed", "empty")


class HostFileError(OSError):
    """A host file that could not be read; ``reason`` is one of ``READ_REASONS``."""

    def __init__(self, reason: str, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.reason = reason
        self.path = str(path)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: Path | str, max_bytes: int = MAX_READ_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; HostFileError otherwise."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise HostFileError("not_regular", path, f"refusing to read {_kind(mode)}")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except HostFileError:
        raise
    except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
        raise HostFileError("missing", path, "no such file") from None
    except OSError as err:
        raise HostFileError("unreadable", path, err.strerror or str(err)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise HostFileError("not_regular", path, f"refusing to read {_kind(mode)}")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise HostFileError("too_large", path, f"more than {max_bytes} bytes")
        return b"".join(chunks)
    except HostFileError:
        raise
    except OSError as err:
        reason = "missing" if err.errno in (errno.ENOENT, errno.ESRCH) else "unreadable"
        raise HostFileError(reason, path, err.strerror or str(err)) from None
    finally:
        os.close(fd)


def read_text(path: Path | str, max_bytes: int = MAX_READ_BYTES) -> str:
    """The text of a small regular host file (undecodable bytes replaced)."""
    return read_bytes(path, max_bytes).decode("utf-8", errors="replace")


def exists(path: Path | str) -> bool:
    """Whether anything is at ``path`` (a FIFO too: it is then refused by the read, and counted)."""
    return os.path.lexists(path)


class ReadErrors:
    """Per-reason counts of one collector's failed host reads, and a warning once per path."""

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self._counts = dict.fromkeys(READ_REASONS, 0)
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def count(self, reason: str, path: Path | str, message: str) -> None:
        """Count one failure and log it at warning the first time this path fails this way."""
        reason = reason if reason in self._counts else "unreadable"
        with self._lock:
            self._counts[reason] += 1
            first = (str(path), reason) not in self._warned
            self._warned.add((str(path), reason))
        if first:
            log.warning("%s: skipping %s (%s): %s", self.collector, path, reason, message)

    def failed(self, err: HostFileError) -> None:
        """Count a HostFileError."""
        self.count(err.reason, err.path, str(err))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def add_to(self, family: CounterMetricFamily) -> None:
        """Add this collector's counts, every reason present, to a read-errors family."""
        for reason, value in self.counts().items():
            family.add_metric([self.collector, reason], float(value))


def read_errors_family(sources: Iterable[ReadErrors]) -> Metric:
    """One ``tuneloop_collector_read_errors_total`` family for every collector that reads files.

    Rendered once for all collectors (by the scheduler's self-metrics): a family split across
    collectors would repeat its HELP line, which the text format forbids.
    """
    family = agent_health.COLLECTOR_READ_ERRORS.family()
    for source in sources:
        source.add_to(family)
    return family
