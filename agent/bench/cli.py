"""``tuneloop-agent bench ...``: iperf3, perf and the fabric check from the command line.

Each command prints a table by default or JSON with ``--json``, and appends its records to the
results file the agent's ``bench`` collector exports (``--results``; default
``$TUNELOOP_STATE_DIR/bench.jsonl``, with ``/var/lib/tuneloop`` as the state directory).
Exit status: 0 on a result, 1 when the test gave none, 2 on bad arguments or files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.bench.background import store_outcome
from agent.bench.fabric import FabricRunner, FabricSchedule, SlotOutcome, make_schedule
from agent.bench.iperf3 import Iperf3Error, Iperf3Result, run_client, split_peer
from agent.bench.perf import DEFAULT_EVENTS, PerfResult, run_perf_stat
from agent.bench.results import (
    ResultsStore,
    iperf3_error_record,
    iperf3_record,
    perf_record,
)


def default_results_path() -> Path:
    """``$TUNELOOP_STATE_DIR/bench.jsonl``, by default under /var/lib/tuneloop."""
    return Path(os.environ.get("TUNELOOP_STATE_DIR", "/var/lib/tuneloop")) / "bench.jsonl"


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _fmt(value: float | None, scale: float = 1.0, digits: int = 2) -> str | None:
    return None if value is None else f"{value * scale:.{digits}f}"


def _iperf3_rows(results: Sequence[Iperf3Result]) -> list[list[object]]:
    return [
        [
            r.peer,
            r.port,
            "receive" if r.reverse else "send",
            _fmt(r.throughput_bps, 1e-9, 3),
            r.retransmits,
            _fmt(r.mean_rtt_s, 1e6, 0),
            _fmt(r.cpu_local_ratio),
            _fmt(r.cpu_remote_ratio),
        ]
        for r in results
    ]


IPERF3_HEADER = ("peer", "port", "direction", "Gbit/s", "retr", "rtt_us", "cpu_loc", "cpu_rem")


def _store(args: argparse.Namespace) -> ResultsStore:
    return ResultsStore(args.results or default_results_path())


def cmd_iperf3(args: argparse.Namespace) -> int:
    """Run one iperf3 test and record it."""
    host, port = split_peer(args.peer)
    store = _store(args)
    try:
        result = run_client(
            host,
            port,
            duration_s=args.duration,
            streams=args.streams,
            window_bytes=args.window,
            timeout_s=args.timeout,
            netns=args.netns,
            busy_retries=args.busy_retries,
            reverse=args.reverse,
        )
    except Iperf3Error as exc:
        store.append(iperf3_error_record(host, port, exc, args.reverse))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store.append(iperf3_record(result))
    print(
        json.dumps(result.to_json()) if args.json else table(_iperf3_rows([result]), IPERF3_HEADER)
    )
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    """Run one perf stat window and record it."""
    events = [e.strip() for e in args.events.split(",") if e.strip()]
    result: PerfResult = run_perf_stat(args.window, pid=args.pid, events=events)
    _store(args).append(perf_record(result))
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        rows = [
            [e.event, e.status, _fmt(e.value, 1.0, 0), e.unit or None, e.message or None]
            for e in result.events
        ]
        print(table(rows, ("event", "status", "value", "unit", "note")))
        print(f"IPC: {_fmt(result.ipc) or 'n/a (cycles and instructions not both counted)'}")
    return 0 if any(e.status == "counted" for e in result.events) else 1


def cmd_fabric_schedule(args: argparse.Namespace) -> int:
    """Compute a round-robin schedule and write it."""
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    start = args.start_at if args.start_at is not None else time.time() + args.start_in
    schedule = make_schedule(
        hosts,
        start_at=start,
        duration_s=args.duration,
        streams=args.streams,
        window_bytes=args.window,
        jitter_s=args.jitter,
        slot_s=args.slot,
        period_s=args.period,
    )
    schedule.dump(args.output)
    if args.json:
        print(json.dumps(schedule.to_json()))
    else:
        rows = [[s.index, s.round, s.client, s.server] for s in schedule.slots()]
        print(table(rows, ("slot", "round", "client", "server")))
        print(
            f"{len(schedule.rounds)} rounds, slot {schedule.slot_s:g}s, cycle {schedule.cycle_s:g}s"
        )
    return 0


def cmd_fabric_run(args: argparse.Namespace) -> int:
    """Run this host's client slots of a schedule file."""
    schedule = FabricSchedule.load(args.schedule)
    store = _store(args)
    failed = 0

    def record(outcome: SlotOutcome) -> None:
        nonlocal failed
        store_outcome(store, outcome)
        if outcome.result is not None:
            line: dict[str, Any] = {"slot": outcome.slot.index, **outcome.result.to_json()}
        elif outcome.error is not None:
            failed += 1
            line = {
                "slot": outcome.slot.index,
                "peer": outcome.slot.server,
                "error": str(outcome.error),
                "reason": outcome.error.reason,
            }
        else:
            line = {"slot": outcome.slot.index, "peer": outcome.slot.server, "skipped": True}
        if args.json:
            print(json.dumps(line), flush=True)
        else:
            status = line.get("error") or ("skipped: slot passed" if outcome.skipped else "ok")
            tput = _fmt(outcome.result.throughput_bps, 1e-9, 3) if outcome.result else "-"
            print(
                f"slot {outcome.slot.index:3d}  {outcome.slot.server:<30} {tput:>10} Gbit/s  "
                f"{status}",
                flush=True,
            )

    runner = FabricRunner(schedule, args.me, on_outcome=record)
    if args.loop:
        stop = threading.Event()
        try:
            runner.run_forever(stop)
        except KeyboardInterrupt:
            stop.set()
    else:
        runner.run_cycle()
    return 1 if failed else 0


def _guarded(cmd: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Bad input (a ValueError naming the field or file) becomes a message and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return cmd(args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    run.__doc__ = cmd.__doc__
    return run


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--results",
        type=Path,
        default=None,
        help="results file to append to (default: $TUNELOOP_STATE_DIR/bench.jsonl, "
        "state dir /var/lib/tuneloop)",
    )


def _test_params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--duration", type=_positive_int, default=5, help="test length in whole seconds (default 5)"
    )
    p.add_argument("--streams", type=_positive_int, default=1, help="parallel streams (-P)")
    p.add_argument(
        "--window",
        type=_positive_int,
        default=None,
        help="socket buffer size in bytes (-w); default: the kernel's",
    )


def add_bench_commands(subparsers: Any) -> None:
    """Add ``bench`` with its subcommands to an argparse subparsers object."""
    bench = subparsers.add_parser(
        "bench",
        help="node benchmarks: iperf3, perf, fabric check",
        description="Run node benchmarks and record their results.",
    )
    sub = bench.add_subparsers(dest="bench_command", required=True)

    p = sub.add_parser(
        "iperf3",
        help="run one iperf3 test against a peer",
        description="Run one iperf3 TCP test (JSON output) against a peer's "
        "iperf3 server; a busy server is retried with backoff.",
    )
    p.add_argument("--peer", required=True, help="HOST, HOST:PORT or [IPv6]:PORT (port 5201)")
    _test_params(p)
    p.add_argument("--reverse", action="store_true", help="the peer sends (iperf3 -R)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds before a hung test is killed (default: duration + 8)",
    )
    p.add_argument("--busy-retries", type=int, default=5, help="retries while the server is busy")
    p.add_argument("--netns", default=None, help="run inside this network namespace")
    _common(p)
    p.set_defaults(func=_guarded(cmd_iperf3))

    p = sub.add_parser(
        "perf",
        help="count CPU events with perf stat",
        description="Run perf stat for a window, system-wide or on one process. "
        "Events the machine cannot count are reported per event.",
    )
    p.add_argument("--window", type=float, default=5.0, help="seconds to count (default 5)")
    p.add_argument("--pid", type=_positive_int, default=None, help="count one process only")
    p.add_argument(
        "--events",
        default=",".join(DEFAULT_EVENTS),
        help=f"comma-separated perf events (default {','.join(DEFAULT_EVENTS)})",
    )
    _common(p)
    p.set_defaults(func=_guarded(cmd_perf))

    p = sub.add_parser(
        "fabric-schedule",
        help="write a round-robin fabric test schedule",
        description="Compute a round-robin schedule (no host in two tests at once, "
        "both directions per pair) and write it as JSON for a ConfigMap.",
    )
    p.add_argument("--hosts", required=True, help="comma-separated HOST or HOST:PORT entries")
    p.add_argument("-o", "--output", type=Path, required=True, help="schedule file to write")
    _test_params(p)
    p.add_argument("--jitter", type=float, default=2.0, help="max random delay per slot (s)")
    p.add_argument("--slot", type=float, default=None, help="slot length (s); default: enough")
    p.add_argument("--period", type=float, default=None, help="repeat every PERIOD seconds")
    p.add_argument("--start-at", type=float, default=None, help="unix time of the first cycle")
    p.add_argument(
        "--start-in",
        type=float,
        default=60.0,
        help="seconds from now to the first cycle (default 60)",
    )
    p.add_argument("--json", action="store_true", help="print the schedule as JSON")
    p.set_defaults(func=_guarded(cmd_fabric_schedule))

    p = sub.add_parser(
        "fabric-run",
        help="run this host's slots of a fabric schedule",
        description="Run this host's client slots, each at its slot time plus "
        "jitter, and record the results.",
    )
    p.add_argument("--schedule", type=Path, required=True, help="schedule file (JSON)")
    p.add_argument("--me", required=True, help="this host's entry in the schedule")
    p.add_argument("--loop", action="store_true", help="keep running each period")
    _common(p)
    p.set_defaults(func=_guarded(cmd_fabric_run))
