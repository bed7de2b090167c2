"""One replica's continuous-batching engine (vLLM's scheduler, in miniature).

At each step boundary the engine finishes sequences that produced their last token, drops
requests that waited longer than the queue timeout, preempts the newest sequences if the next
token would not fit in the KV cache (vLLM's recompute preemption: the sequence goes back to the
head of the queue and re-prefills its prompt plus what it generated), then admits waiting
requests first-come first-served while the batch is under ``batch_limit`` and their prompt fits
in the free KV cache. Admission looks only at the KV in use now, as vLLM does, so a batch limit
that lets many sequences grow together oversubscribes the cache and causes preemptions.

A step with admissions is a prefill step (new sequences emit their first token at its end). Steps
without admissions are decode steps; while nothing joins or leaves the batch their durations grow
linearly (each adds one KV token per sequence), so a run of them is computed in closed form and
recorded as one *segment* ``(start, first duration, increment, steps, batch)``. That keeps the cost
per simulated second proportional to events, not to steps. Chunked prefill is not modelled.

Each request records, on the replica's clock, its arrival, first admission, first token and
finish, so a window has vLLM's queue (arrival to first admission), prefill (first admission to
first token) and decode (first token to last) times; a preempted request keeps its first
admission and first token, as in vLLM.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

from tuner.sim.profiles import STEP_PER_KV_TOKEN_S as STEP_GROWTH
from tuner.sim.profiles import GpuProfile

PENDING, DONE, ERROR = 0, 1, 2


class RequestTable:
    """Per-request state shared by the fleet and its replicas (plain lists: fast to index)."""

    def __init__(self) -> None:
        self.prompt: list[int] = []
        self.output: list[int] = []
        self.base: list[int] = []  # tokens generated before the current admission
        self.admit_step: list[int] = []
        self.queued_t: list[float] = []  # replica time of arrival at the replica
        self.scheduled_t: list[float] = []  # replica time of the first admission
        self.first_t: list[float] = []  # replica time of the first token
        self.finish_t: list[float] = []  # replica time of the last token (or of the error)
        self.preemptions: list[int] = []
        self.status: list[int] = []
        self.replica: list[int] = []

    def add(self, prompt: int, output: int) -> int:
        """Register a request; returns its index."""
        self.prompt.append(prompt)
        self.output.append(output)
        self.base.append(0)
        self.admit_step.append(0)
        self.queued_t.append(math.nan)
        self.scheduled_t.append(math.nan)
        self.first_t.append(math.nan)
        self.finish_t.append(math.nan)
        self.preemptions.append(0)
        self.status.append(PENDING)
        self.replica.append(-1)
        return len(self.prompt) - 1


class Replica:
    """A replica's engine; ``advance(t)`` runs it up to the first step boundary at or after t."""

    def __init__(
        self,
        index: int,
        gpu: GpuProfile,
        batch_limit: int,
        table: RequestTable,
        queue_timeout_s: float = 30.0,
        on_done: list[tuple[float, int]] | None = None,
    ) -> None:
        self.index = index
        self.gpu = gpu
        self.batch_limit = batch_limit
        self.table = table
        self.queue_timeout_s = queue_timeout_s
        self.done = on_done if on_done is not None else []  # (time, request) as they finish
        self.waiting: deque[int] = deque()
        self.arrived: dict[int, float] = {}
        self.running: dict[int, None] = {}  # insertion order = admission order
        self.finish_heap: list[tuple[int, int]] = []  # (finish step, request)
        self.step = 0
        self.kv_offset = 0  # kv tokens in use = kv_offset + len(running) * step
        self.t_next = math.inf  # end of the step in progress; inf when idle
        self.segments: list[tuple[float, float, float, int, int]] = []
        self.preemptions = 0

    @property
    def connections(self) -> int:
        """Requests on this replica (waiting or running)."""
        return len(self.waiting) + len(self.running)

    def kv_used(self) -> int:
        """KV tokens in use now."""
        return self.kv_offset + len(self.running) * self.step

    def enqueue(self, req: int, t: float) -> None:
        """A request reaches the replica at time ``t``."""
        self.waiting.append(req)
        self.arrived[req] = t
        self.table.queued_t[req] = t
        self.table.replica[req] = self.index
        if self.t_next == math.inf:
            self.t_next = t

    def advance(self, t_until: float) -> None:
        """Process every step boundary at or before ``t_until``."""
        while self.t_next <= t_until:
            self._boundary(self.t_next, t_until)

    def _error(self, req: int, t: float) -> None:
        tab = self.table
        tab.status[req] = ERROR
        tab.finish_t[req] = t
        self.done.append((t, req))

    def _boundary(self, t: float, t_until: float) -> None:
        tab = self.table
        running = self.running
        fheap = self.finish_heap
        step = self.step
        while fheap and fheap[0][0] <= step:
            _, req = heapq.heappop(fheap)
            if req in running and tab.admit_step[req] + tab.output[req] - tab.base[req] == step:
                del running[req]
                self.kv_offset -= tab.prompt[req] + tab.base[req] - tab.admit_step[req]
                tab.status[req] = DONE
                tab.finish_t[req] = t
                self.done.append((t, req))
        waiting = self.waiting
        while waiting and t - self.arrived[waiting[0]] > self.queue_timeout_s:
            self._error(waiting.popleft(), t)
        cap = self.gpu.kv_capacity_tokens
        # Preempt the newest sequences until every running one can add its next token.
        while running and self.kv_offset + len(running) * (step + 1) > cap:
            req, _ = running.popitem()
            gen = step - tab.admit_step[req]
            self.kv_offset -= tab.prompt[req] + tab.base[req] - tab.admit_step[req]
            tab.base[req] += gen
            tab.preemptions[req] += 1
            self.preemptions += 1
            waiting.appendleft(req)
        prefill = 0
        kv = self.kv_offset + len(running) * step
        while waiting and len(running) < self.batch_limit:
            req = waiting[0]
            need = tab.prompt[req] + tab.base[req]
            if need + 1 > cap:
                waiting.popleft()
                self._error(req, t)
                continue
            if kv + need + len(running) + 1 > cap:
                break
            waiting.popleft()
            running[req] = None
            tab.admit_step[req] = step
            if tab.preemptions[req] == 0:  # first admission
                tab.scheduled_t[req] = t
            self.kv_offset += need - step
            kv += need
            prefill += need
            heapq.heappush(fheap, (step + tab.output[req] - tab.base[req], req))
        n = len(running)
        if n == 0:
            self.t_next = math.inf if not waiting else t + 1e-3
            return
        gpu = self.gpu
        if prefill:
            dur = gpu.step_seconds(n, kv, prefill)
            end = t + dur
            for req in running:
                if tab.admit_step[req] == step and tab.base[req] == 0:
                    tab.first_t[req] = end
            self.segments.append((t, dur, 0.0, 1, n))
            self.step = step + 1
            self.t_next = end
            return
        # A run of decode steps: stop at the next finish, before the KV cache overflows, or at
        # the first boundary at or after t_until (when a request may arrive).
        steps = fheap[0][0] - step
        kv_room = (cap - self.kv_offset) // n - step - 1
        steps = max(1, min(steps, kv_room + 1))
        d0 = gpu.step_seconds(n, kv)
        g = STEP_GROWTH * n / gpu.speed
        span = t_until - t
        if span > 0 and steps > 1:
            if g > 0:
                half = d0 - g / 2.0
                k_time = math.ceil((-half + math.sqrt(half * half + 2.0 * g * span)) / g)
            else:
                k_time = math.ceil(span / d0)
            steps = max(1, min(steps, k_time))
        elif span <= 0:
            steps = 1
        self.segments.append((t, d0, g, steps, n))
        self.step = step + steps
        self.t_next = t + steps * d0 + g * steps * (steps - 1) / 2.0
