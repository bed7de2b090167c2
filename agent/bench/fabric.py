"""Fabric check: a round-robin schedule of iperf3 tests, and the agent-side slot runner.

Decisions:

- The schedule is a round-robin tournament by the circle method: N-1 rounds for even N, N
  rounds for odd N (a dummy host gives each host one bye). Every pair meets in exactly one
  round and no host is in two pairs of a round.
- Both directions of a pair are tested in the same round as two slots: in slot 0 the earlier
  host of the pair (in the schedule's host order) is the client, in slot 1 the later one. So
  every agent only ever measures what it sends, which is what the ``{peer}`` throughput metric
  means on every node, and each host's iperf3 server serves one test per slot.
- The schedule is computed centrally and handed to agents as a JSON file (a ConfigMap key
  projected into the pod). Times are absolute: slot ``k`` of a cycle starts at
  ``cycle_start + k * slot_s``; a periodic schedule repeats every ``period_s``. Each client
  waits a uniform random jitter in ``[0, jitter_s]`` after its slot start, and a slot is long
  enough for jitter, the test, its connect timeout and a margin, so tests of adjacent slots
  never overlap even with clocks a little apart (busy retries absorb the rest).
- Host entries may be ``HOST`` or ``HOST:PORT`` (the peer's iperf3 server port).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.bench.iperf3 import (
    CONNECT_TIMEOUT_S,
    TIMEOUT_MARGIN_S,
    Iperf3Error,
    Iperf3Result,
    run_client,
    split_peer,
)

SCHEDULE_VERSION = 1

Pair = tuple[str, str]


def round_robin(hosts: Sequence[str]) -> list[list[Pair]]:
    """Rounds of pairs by the circle method; each pair is (earlier host, later host)."""
    if len(set(hosts)) != len(hosts):
        raise ValueError("hosts: duplicate host names")
    order = {host: i for i, host in enumerate(hosts)}
    ring: list[str | None] = list(hosts)
    if len(ring) % 2:
        ring.append(None)  # the bye
    n = len(ring)
    rounds: list[list[Pair]] = []
    for _ in range(n - 1):
        pairs: list[Pair] = []
        for i in range(n // 2):
            a, b = ring[i], ring[n - 1 - i]
            if a is not None and b is not None:
                pairs.append((a, b) if order[a] < order[b] else (b, a))
        rounds.append(pairs)
        ring = [ring[0], ring[-1], *ring[1:-1]]  # rotate all but the first
    return rounds


@dataclass(frozen=True)
class Slot:
    """One test: ``client`` runs iperf3 against ``server`` at slot ``index`` of the cycle."""

    index: int
    round: int
    client: str
    server: str


@dataclass(frozen=True)
class FabricSchedule:
    """A fabric test plan: rounds of pairs and the test parameters."""

    hosts: tuple[str, ...]
    rounds: tuple[tuple[Pair, ...], ...]
    start_at: float
    slot_s: float
    duration_s: float = 5.0
    streams: int = 1
    window_bytes: int | None = None
    jitter_s: float = 2.0
    period_s: float | None = None

    def __post_init__(self) -> None:
        need = self.duration_s + self.jitter_s + CONNECT_TIMEOUT_S
        if not self.slot_s >= need:
            raise ValueError(
                f"slot_s: {self.slot_s} is shorter than duration+jitter+connect {need}"
            )
        if self.jitter_s < 0:
            raise ValueError(f"jitter_s: expected >= 0, got {self.jitter_s}")
        if self.period_s is not None and self.period_s < self.cycle_s:
            raise ValueError(f"period_s: {self.period_s} is shorter than one cycle {self.cycle_s}")
        for host in self.hosts:
            split_peer(host)

    @property
    def cycle_s(self) -> float:
        """Length of one pass over every slot."""
        return 2 * len(self.rounds) * self.slot_s

    def slots(self) -> list[Slot]:
        """Every slot of a cycle: two per round, one per direction of each pair."""
        out: list[Slot] = []
        for r, pairs in enumerate(self.rounds):
            for a, b in pairs:
                out.append(Slot(2 * r, r, a, b))
                out.append(Slot(2 * r + 1, r, b, a))
        return out

    def client_slots(self, me: str) -> list[Slot]:
        """The slots where ``me`` runs the client, in time order."""
        if me not in self.hosts:
            raise ValueError(f"me: {me!r} is not a host of this schedule")
        return sorted((s for s in self.slots() if s.client == me), key=lambda s: s.index)

    def cycle_start(self, now: float) -> float:
        """Start of the cycle running at ``now``, or of the first one if none has begun."""
        if now < self.start_at or self.period_s is None:
            return self.start_at
        return self.start_at + math.floor((now - self.start_at) / self.period_s) * self.period_s

    def to_json(self) -> dict[str, Any]:
        """The schedule file's content."""
        return {
            "version": SCHEDULE_VERSION,
            "hosts": list(self.hosts),
            "rounds": [[list(p) for p in pairs] for pairs in self.rounds],
            "start_at": self.start_at,
            "slot_s": self.slot_s,
            "duration_s": self.duration_s,
            "streams": self.streams,
            "window_bytes": self.window_bytes,
            "jitter_s": self.jitter_s,
            "period_s": self.period_s,
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "schedule") -> FabricSchedule:
        """Validate and build; ValueError names the source and the field."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object")
        if data.get("version") != SCHEDULE_VERSION:
            raise ValueError(f"{source}: version must be {SCHEDULE_VERSION}")
        try:
            hosts = tuple(str(h) for h in data["hosts"])
            rounds = tuple(tuple((str(a), str(b)) for a, b in r) for r in data["rounds"])
            schedule = cls(
                hosts=hosts,
                rounds=rounds,
                start_at=float(data["start_at"]),
                slot_s=float(data["slot_s"]),
                duration_s=float(data["duration_s"]),
                streams=int(data["streams"]),
                window_bytes=None if data["window_bytes"] is None else int(data["window_bytes"]),
                jitter_s=float(data["jitter_s"]),
                period_s=None if data["period_s"] is None else float(data["period_s"]),
            )
        except KeyError as exc:
            raise ValueError(f"{source}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None
        _check_rounds(schedule, source)
        return schedule

    def dump(self, path: Path) -> None:
        """Write the schedule file (atomically: temp file, then rename)."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FabricSchedule:
        """Read and validate a schedule file."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read schedule: {exc}") from None
        return cls.from_json(data, str(path))


def _check_rounds(schedule: FabricSchedule, source: str) -> None:
    known = set(schedule.hosts)
    for r, pairs in enumerate(schedule.rounds):
        seen: set[str] = set()
        for a, b in pairs:
            for host in (a, b):
                if host not in known:
                    raise ValueError(f"{source}: rounds[{r}] names unknown host {host!r}")
                if host in seen:
                    raise ValueError(f"{source}: rounds[{r}] has host {host!r} twice")
                seen.add(host)


def make_schedule(
    hosts: Sequence[str],
    *,
    start_at: float,
    duration_s: float = 5.0,
    streams: int = 1,
    window_bytes: int | None = None,
    jitter_s: float = 2.0,
    slot_s: float | None = None,
    period_s: float | None = None,
) -> FabricSchedule:
    """A schedule for ``hosts`` (at least two); ``slot_s`` defaults to what a test needs."""
    if len(hosts) < 2:
        raise ValueError("hosts: a fabric check needs at least two hosts")
    if slot_s is None:
        slot_s = float(math.ceil(duration_s + jitter_s + CONNECT_TIMEOUT_S + TIMEOUT_MARGIN_S))
    rounds = tuple(tuple(pairs) for pairs in round_robin(hosts))
    return FabricSchedule(
        tuple(hosts),
        rounds,
        start_at,
        slot_s,
        duration_s,
        streams,
        window_bytes,
        jitter_s,
        period_s,
    )


@dataclass(frozen=True)
class SlotOutcome:
    """What happened in one of this host's slots."""

    slot: Slot
    result: Iperf3Result | None = None
    error: Iperf3Error | None = None
    skipped: bool = False  # the slot had already passed


Runner = Callable[..., Iperf3Result]


class FabricRunner:
    """Runs this host's client slots of a schedule, each at its slot time plus jitter."""

    def __init__(
        self,
        schedule: FabricSchedule,
        me: str,
        *,
        run: Runner = run_client,
        on_outcome: Callable[[SlotOutcome], None] | None = None,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.slots = schedule.client_slots(me)
        self.schedule = schedule
        self.me = me
        self._run = run
        self._on_outcome = on_outcome
        self._now = now
        self._sleep = sleep
        self._rng = rng or random.Random()

    def run_cycle(self, cycle_start: float | None = None) -> list[SlotOutcome]:
        """Run every remaining slot of the cycle starting at ``cycle_start`` (default: current)."""
        sched = self.schedule
        start = sched.cycle_start(self._now()) if cycle_start is None else cycle_start
        outcomes = []
        for slot in self.slots:
            slot_at = start + slot.index * sched.slot_s
            latest = slot_at + sched.slot_s - sched.duration_s - CONNECT_TIMEOUT_S
            if self._now() > latest:
                outcome = SlotOutcome(slot, skipped=True)
            else:
                at = max(slot_at + self._rng.uniform(0.0, sched.jitter_s), self._now())
                self._sleep(max(0.0, at - self._now()))
                outcome = self._run_slot(slot)
            outcomes.append(outcome)
            if self._on_outcome is not None:
                self._on_outcome(outcome)
        return outcomes

    def _run_slot(self, slot: Slot) -> SlotOutcome:
        host, port = split_peer(slot.server)
        sched = self.schedule
        try:
            result = self._run(
                host,
                port,
                duration_s=sched.duration_s,
                streams=sched.streams,
                window_bytes=sched.window_bytes,
                timeout_s=sched.slot_s - sched.jitter_s,
                busy_retries=3,
            )
        except Iperf3Error as exc:
            return SlotOutcome(slot, error=exc)
        return SlotOutcome(slot, result=result)

    def run_forever(self, stop: threading.Event) -> None:
        """Run cycle after cycle of a periodic schedule until ``stop`` is set."""
        sched = self.schedule
        start = sched.cycle_start(self._now())
        while not stop.is_set():
            self.run_cycle(start)
            if sched.period_s is None:
                return
            start += sched.period_s
            stop.wait(max(0.0, start - self._now()))
