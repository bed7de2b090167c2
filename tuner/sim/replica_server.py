"""A real-time replica for the local lab: OpenAI-compatible completions with vLLM's /metrics.

One engine thread runs the same continuous-batching rules as the simulated replica (FCFS
admission under the batch limit and the free KV cache, one token per running sequence per step)
and sleeps for each step's modelled duration, so latency behaves as the profile says. Streaming
responses are server-sent events, one chunk per token, ending with ``data: [DONE]``. /metrics
exposes vLLM's names (queue depth, KV cache, token counters, preemptions, the latency
histograms and the request length, queue, prefill and decode histograms; see
:mod:`tuner.sim.replica_metrics`) so the agent's inference collector and Prometheus see it as
vLLM. Prompt length is estimated as one token per 4 characters. When
decoding grows the KV cache past capacity, the newest sequences are preempted back to the queue
and recomputed on readmission, as vLLM's default preemption does.

A client that goes away (a load generator's timeout, a closed stream) aborts its request, as vLLM
does: the engine drops it at the next step, so an overload in one measurement window does not
carry its backlog into the next. Aborts are counted in ``vllm:request_success_total`` with
``finished_reason="abort"``.
"""

from __future__ import annotations

import json
import queue
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tuner.sim.profiles import GpuProfile
from tuner.sim.replica_metrics import ReplicaMetrics


@dataclass
class Job:
    """One request inside the engine; tokens go to ``out`` and ``None`` ends the stream."""

    prompt_tokens: int
    max_tokens: int
    arrived: float = field(default_factory=time.monotonic)
    generated: int = 0
    aborted: bool = False
    scheduled_at: float | None = None  # first admission; a preemption does not reset it
    first_token_at: float | None = None
    last_token_at: float | None = None
    out: queue.Queue[int | None] = field(default_factory=queue.Queue)


class Engine:
    """The replica's continuous-batching loop in real time."""

    def __init__(self, gpu: GpuProfile, batch_limit: int, model: str) -> None:
        self.gpu = gpu
        self.batch_limit = batch_limit
        self.model = model
        self.waiting: deque[Job] = deque()
        self.running: list[Job] = []
        self.cond = threading.Condition()
        self.stopped = False
        self.metrics = ReplicaMetrics(model)
        self.registry = self.metrics.registry
        self.thread = threading.Thread(target=self._loop, name="replica-engine", daemon=True)

    def submit(self, job: Job) -> None:
        """Queue a request."""
        with self.cond:
            self.waiting.append(job)
            self.cond.notify()

    def abort(self, job: Job) -> None:
        """The client went away: drop the request at the next step."""
        with self.cond:
            if not job.aborted:
                job.aborted = True
                self.metrics.finished.labels(self.model, "abort").inc()

    def _kv(self) -> int:
        return sum(j.prompt_tokens + j.generated for j in self.running)

    def _update_gauges(self) -> None:
        m, metrics = self.model, self.metrics
        metrics.waiting.labels(m).set(len(self.waiting))
        metrics.running.labels(m).set(len(self.running))
        metrics.kv.labels(m).set(self._kv() / self.gpu.kv_capacity_tokens)

    def _loop(self) -> None:
        cap = self.gpu.kv_capacity_tokens
        while True:
            with self.cond:
                while not self.stopped and not self.waiting and not self.running:
                    self._update_gauges()
                    self.cond.wait(0.5)
                if self.stopped:
                    return
                kv = self._kv()
                prefill = 0
                admitted_at = time.monotonic()
                while self.waiting and len(self.running) < self.batch_limit:
                    job = self.waiting[0]
                    if job.aborted:
                        self.waiting.popleft()
                        continue
                    need = job.prompt_tokens + job.generated  # a preempted job recomputes
                    if need + 1 > cap:
                        self.waiting.popleft()
                        job.out.put(None)
                        continue
                    if kv + need + len(self.running) + 1 > cap:
                        break
                    self.waiting.popleft()
                    self.running.append(job)
                    if job.scheduled_at is None:
                        job.scheduled_at = admitted_at
                    kv += need
                    prefill += need
                batch = list(self.running)
                self._update_gauges()
                if prefill:
                    self.metrics.prompt.labels(self.model).inc(prefill)
            time.sleep(self.gpu.step_seconds(len(batch), kv, prefill))
            now = time.monotonic()
            with self.cond:
                for job in batch:
                    if job.aborted:
                        self.running.remove(job)
                        continue
                    job.generated += 1
                    self.metrics.generation.labels(self.model).inc()
                    if job.first_token_at is None:
                        job.first_token_at = now
                        self.metrics.ttft.labels(self.model).observe(now - job.arrived)
                    elif job.last_token_at is not None:
                        self.metrics.tpot.labels(self.model).observe(now - job.last_token_at)
                    job.last_token_at = now
                    job.out.put(job.generated)
                    if job.generated >= job.max_tokens:
                        self.running.remove(job)
                        self._finished(job, now)
                        job.out.put(None)
                self._preempt_over_capacity(cap)

    def _finished(self, job: Job, now: float) -> None:
        scheduled = job.scheduled_at if job.scheduled_at is not None else job.arrived
        first = job.first_token_at if job.first_token_at is not None else now
        self.metrics.request_finished(
            self.model, (job.prompt_tokens, job.generated), (job.arrived, scheduled, first, now)
        )

    def _preempt_over_capacity(self, cap: int) -> None:
        """Decoding grows the KV cache; past capacity the newest sequences go back to the queue
        (vLLM's recompute preemption). Called with the condition held."""
        kv = self._kv()
        while kv > cap and len(self.running) > 1:
            job = self.running.pop()
            kv -= job.prompt_tokens + job.generated
            self.waiting.appendleft(job)
            self.metrics.preemptions.labels(self.model).inc()

    def stop(self) -> None:
        """Stop the loop."""
        with self.cond:
            self.stopped = True
            self.cond.notify()


def _handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"
        _checked_at = 0.0  # when the client's socket was last polled for a close

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _client_gone(self) -> bool:
            """True once the client closed its side (EOF readable without a request)."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _next_token(self, job: Job) -> int | None:
            """The next token, or None at the end or once the client has gone (then aborted)."""
            while True:
                now = time.monotonic()
                if now - self._checked_at >= 0.2:  # a cheap poll, a few times a second
                    self._checked_at = now
                    if self._client_gone():
                        engine.abort(job)
                        return None
                try:
                    return job.out.get(timeout=0.2)
                except queue.Empty:
                    continue

        def _error(self, code: int, message: str) -> None:
            err = {"error": {"message": message, "type": "invalid_request_error"}}
            self._send(code, json.dumps(err).encode())

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, b"")
            elif self.path == "/metrics":
                self._send(200, generate_latest(engine.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/v1/models":
                data = {"object": "list", "data": [{"id": engine.model, "object": "model"}]}
                self._send(200, json.dumps(data).encode())
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            if self.path != "/v1/completions":
                self._error(404, f"no route {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                prompt = body.get("prompt", "")
                if not isinstance(prompt, str):
                    raise ValueError("'prompt' must be a string")
                max_tokens = body.get("max_tokens", 16)
                if (
                    isinstance(max_tokens, bool)
                    or not isinstance(max_tokens, int)
                    or max_tokens < 1
                ):
                    raise ValueError(f"'max_tokens' must be a positive integer, got {max_tokens!r}")
            except ValueError as exc:
                self._error(400, str(exc))
                return
            job = Job(max(1, len(prompt) // 4), max_tokens)
            engine.submit(job)
            stream = bool(body.get("stream", False))
            rid = f"cmpl-{id(job):x}"
            if stream:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
            tokens: list[str] = []
            while (tok := self._next_token(job)) is not None:
                text = f" tok{tok}"
                tokens.append(text)
                if stream:
                    chunk = {
                        "id": rid,
                        "object": "text_completion",
                        "model": engine.model,
                        "choices": [{"index": 0, "text": text, "finish_reason": None}],
                    }
                    try:
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    except OSError:  # the client closed the stream
                        engine.abort(job)
                        return
            if job.aborted:
                return
            usage = {
                "prompt_tokens": job.prompt_tokens,
                "completion_tokens": job.generated,
                "total_tokens": job.prompt_tokens + job.generated,
            }
            finish = "length" if job.generated >= job.max_tokens else "error"
            if stream:
                self.wfile.write(b"data: [DONE]\n\n")
                return
            out = {
                "id": rid,
                "object": "text_completion",
                "model": engine.model,
                "choices": [{"index": 0, "text": "".join(tokens), "finish_reason": finish}],
                "usage": usage,
            }
            self._send(200, json.dumps(out).encode())

    return Handler


class ReplicaServer:
    """The HTTP replica; ``start()`` serves in background threads, ``stop()`` shuts down."""

    def __init__(
        self,
        gpu: GpuProfile,
        host: str = "127.0.0.1",
        port: int = 8000,
        batch_limit: int = 256,
        model: str = "sim-llama-3-8b",
    ) -> None:
        self.engine = Engine(gpu, batch_limit, model)
        self.httpd = ThreadingHTTPServer((host, port), _handler(self.engine))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self.engine.thread.start()
        self._thread.start()

    def serve_forever(self) -> None:
        self.engine.thread.start()
        try:
            self.httpd.serve_forever()
        finally:
            self.engine.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.engine.stop()
