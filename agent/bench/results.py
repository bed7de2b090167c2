"""The benchmark results store (JSON lines) and the collector that exports the last results.

Decisions: the store is append-only, one JSON object per line, each append fsync'd, so a crash
loses at most the record being written. A reader ignores a torn last line (no newline yet); a
writer that finds one first ends it with a newline, so the torn fragment becomes one skipped
line instead of corrupting the next record. The collector reads only what was appended since
its last refresh (the file may grow for months) and starts over when the file shrinks
(rotated or truncated). Failure counters are counted from the file, so they survive agent
restarts and only reset when the file is rotated.

Record kinds: ``iperf3`` (an :class:`Iperf3Result`), ``iperf3_error`` (peer, port, reason,
message) and ``perf`` (a :class:`PerfResult`); every record has ``kind`` and ``at``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric

from agent.bench.iperf3 import Iperf3Error, Iperf3Result
from agent.bench.perf import PerfResult
from agent.collectors.base import Collector
from tuneloop.catalog import bench as catalog

log = logging.getLogger(__name__)

DEFAULT_RESULTS_PATH = Path("/var/lib/tuneloop/bench.jsonl")


def peer_label(peer: str, port: int) -> str:
    """The ``peer`` label: the host, with ``:PORT`` when not iperf3's default 5201."""
    if port == 5201:
        return peer
    return f"[{peer}]:{port}" if ":" in peer else f"{peer}:{port}"


def iperf3_record(result: Iperf3Result) -> dict[str, Any]:
    """A store record for a finished iperf3 test."""
    return {"kind": "iperf3", "at": time.time(), **result.to_json()}


def iperf3_error_record(
    peer: str, port: int, error: Iperf3Error, reverse: bool = False
) -> dict[str, Any]:
    """A store record for an iperf3 test that failed."""
    return {
        "kind": "iperf3_error",
        "at": time.time(),
        "peer": peer,
        "port": port,
        "reverse": reverse,
        "reason": error.reason,
        "message": str(error),
    }


def perf_record(result: PerfResult) -> dict[str, Any]:
    """A store record for a perf stat window."""
    return {"kind": "perf", "at": time.time(), **result.to_json()}


class ResultsStore:
    """Append-only JSON-lines file of benchmark records."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and fsync it; creates the file and its directory."""
        if "kind" not in record:
            raise ValueError("record: field 'kind' is required")
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line  # end a torn line left by a crash
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every complete, well-formed record, oldest first."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        records, _ = split_records(data, str(self.path))
        return records


def split_records(data: bytes, source: str) -> tuple[list[dict[str, Any]], int]:
    """Parse complete lines of ``data``; returns the records and the bytes consumed."""
    end = data.rfind(b"\n") + 1
    records: list[dict[str, Any]] = []
    for lineno, raw in enumerate(data[:end].splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (ValueError, RecursionError):
            log.warning("%s: skipping a malformed line (%d bytes)", source, len(raw))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
            log.warning("%s: skipping line %d: not a record with a 'kind'", source, lineno)
            continue
        records.append(record)
    return records, end


class BenchResultsCollector(Collector):
    """Exports the last iperf3 record per peer and direction and the last perf record."""

    name = "bench"

    def __init__(self, results_path: Path) -> None:
        super().__init__()
        self.results_path = Path(results_path)
        self._offset = 0
        self._iperf3: dict[tuple[str, bool], Iperf3Result] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._perf: PerfResult | None = None
        self.skipped = 0  # records that did not validate

    def _reset(self) -> None:
        self._offset = 0
        self._iperf3.clear()
        self._failures.clear()
        self._perf = None

    def _ingest(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        try:
            if kind == "iperf3":
                result = Iperf3Result.from_json(record)
                self._iperf3[(peer_label(result.peer, result.port), result.reverse)] = result
            elif kind == "iperf3_error":
                key = (peer_label(str(record["peer"]), int(record["port"])), str(record["reason"]))
                self._failures[key] = self._failures.get(key, 0) + 1
            elif kind == "perf":
                self._perf = PerfResult.from_json(record)
        except (ValueError, KeyError, TypeError) as exc:
            self.skipped += 1
            log.warning("%s: skipping a %s record: %s", self.results_path, kind, exc)

    def _read_new(self) -> None:
        try:
            size = self.results_path.stat().st_size
        except FileNotFoundError:
            self._reset()
            return
        if size < self._offset:
            self._reset()
        with self.results_path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        records, consumed = split_records(data, str(self.results_path))
        self._offset += consumed
        for record in records:
            self._ingest(record)

    def scrape(self) -> Iterable[Metric]:
        """Read new records and build the families."""
        self._read_new()
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        send, receive = (
            catalog.IPERF3_THROUGHPUT.family(),
            catalog.IPERF3_RECEIVE_THROUGHPUT.family(),
        )
        per_test = {
            spec: spec.family()
            for spec in (
                catalog.IPERF3_RETRANSMITS,
                catalog.IPERF3_MEAN_RTT,
                catalog.IPERF3_CPU_LOCAL,
                catalog.IPERF3_CPU_REMOTE,
                catalog.IPERF3_LAST_RUN,
            )
        }
        for (peer, reverse), r in sorted(self._iperf3.items()):
            (receive if reverse else send).add_metric([peer], r.throughput_bps / 8)
            labels = [peer, "receive" if reverse else "send"]
            values = (r.retransmits, r.mean_rtt_s, r.cpu_local_ratio, r.cpu_remote_ratio)
            for spec, value in zip(per_test, (*values, r.started_at), strict=True):
                if value is not None:
                    per_test[spec].add_metric(labels, float(value))
        yield send
        yield receive
        yield from per_test.values()
        failures = catalog.IPERF3_FAILURES.family()
        for (peer, reason), count in sorted(self._failures.items()):
            failures.add_metric([peer, reason], count)
        yield failures
        yield from self._perf_families()

    def _perf_families(self) -> Iterator[Metric]:
        rate, supported = catalog.PERF_EVENT_RATE.family(), catalog.PERF_EVENT_SUPPORTED.family()
        ipc, window = catalog.PERF_IPC.family(), catalog.PERF_WINDOW.family()
        last = catalog.PERF_LAST_RUN.family()
        perf = self._perf
        if perf is not None:
            for ev in perf.events:
                supported.add_metric([ev.event, ev.status], 1.0 if ev.supported else 0.0)
                if ev.status == "counted" and ev.value is not None and perf.window_s > 0:
                    rate.add_metric([ev.event], ev.value / perf.window_s)
            if perf.ipc is not None:
                ipc.add_metric([], perf.ipc)
            window.add_metric([], perf.window_s)
            last.add_metric([], perf.started_at)
        yield from (rate, supported, ipc, window, last)
