"""A bounded open-loop load generator: Poisson arrivals, a prompt-length mix, streamed requests.

Decisions:
- Open loop: arrivals follow a Poisson process at ``rate`` whatever the latency, as real users
  do; a closed loop would slow down with the fleet and hide queueing. Each request runs in its
  own thread; at ``max_in_flight`` outstanding requests a new arrival is counted ``dropped``
  rather than queued in the client, so the offered load stays what was asked.
- Bounded: it stops sending after ``duration`` seconds or ``max_requests`` arrivals, whichever
  comes first, then waits at most ``timeout`` for requests in flight; each request has the same
  deadline. Nothing runs unbounded.
- Client-side latencies: TTFT is the time to the first streamed token, ITL each gap between
  tokens, e2e the time to ``[DONE]``; successful requests are observed, failures are counted
  by outcome, except timeouts, which are also observed in the e2e histogram at the time the
  client gave up (a user did wait that long; leaving them out would make an overloaded replica
  look fast). Histograms use buckets fine enough (about 20% apart from 25 ms to 10 s) that a
  P99 interpolated by ``histogram_quantile`` is within a bucket's width of the true one.
- A JSON summary (``--summary``) holds exact percentiles from the raw samples, for benchmarks.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tuneloop.catalog import loadgen as spec

BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.6,
    0.75,
    0.9,
    1.0,
    1.25,
    1.5,
    2.0,
    2.5,
    3.0,
    4.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
    60.0,
)
DEFAULT_MIX = "64:0.5,256:0.35,1024:0.15"


def parse_mix(text: str) -> list[tuple[int, float]]:
    """``"TOKENS:WEIGHT,..."`` -> [(prompt tokens, probability)]; ValueError names the item."""
    items: list[tuple[int, float]] = []
    for part in text.split(","):
        tokens, sep, weight = part.strip().partition(":")
        try:
            if not sep:
                raise ValueError("missing ':'")
            n, w = int(tokens), float(weight)
            if n < 1 or w <= 0:
                raise ValueError("tokens must be >= 1 and the weight > 0")
        except ValueError as exc:
            raise ValueError(
                f"--prompt-mix: bad item {part!r} ({exc}); want TOKENS:WEIGHT"
            ) from None
        items.append((n, w))
    if not items:
        raise ValueError("--prompt-mix: give at least one TOKENS:WEIGHT item")
    total = sum(w for _, w in items)
    return [(n, w / total) for n, w in items]


@dataclass(frozen=True)
class LoadConfig:
    host: str
    port: int
    rate: float  # requests per second (Poisson)
    duration_s: float
    max_requests: int
    output_tokens: int = 16
    prompt_mix: tuple[tuple[int, float], ...] = tuple(parse_mix(DEFAULT_MIX))
    timeout_s: float = 20.0
    max_in_flight: int = 256
    seed: int = 0
    model: str = "sim-llama-3-8b"

    def __post_init__(self) -> None:
        for name in ("rate", "duration_s", "timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("max_requests", "output_tokens", "max_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


@dataclass
class Samples:
    """Raw per-request results, for the exact summary."""

    e2e: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    tokens: int = 0


class LoadGenerator:
    """Sends the load and records client-side latencies into ``registry``."""

    def __init__(self, config: LoadConfig, registry: CollectorRegistry | None = None) -> None:
        self.cfg = config
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.h_ttft = Histogram(
            spec.LOADGEN_TTFT.name, spec.LOADGEN_TTFT.help, buckets=BUCKETS, registry=r
        )
        self.h_itl = Histogram(
            spec.LOADGEN_ITL.name, spec.LOADGEN_ITL.help, buckets=BUCKETS, registry=r
        )
        self.h_e2e = Histogram(
            spec.LOADGEN_E2E.name, spec.LOADGEN_E2E.help, buckets=BUCKETS, registry=r
        )
        self.c_requests = Counter(
            spec.LOADGEN_REQUESTS.name,
            spec.LOADGEN_REQUESTS.help,
            list(spec.LOADGEN_REQUESTS.labels),
            registry=r,
        )
        self.c_tokens = Counter(spec.LOADGEN_TOKENS.name, spec.LOADGEN_TOKENS.help, registry=r)
        self.g_in_flight = Gauge(
            spec.LOADGEN_IN_FLIGHT.name, spec.LOADGEN_IN_FLIGHT.help, registry=r
        )
        offered = Gauge(spec.LOADGEN_OFFERED_RATE.name, spec.LOADGEN_OFFERED_RATE.help, registry=r)
        offered.set(config.rate)
        for outcome in ("ok", "error", "timeout", "dropped"):
            self.c_requests.labels(outcome)  # every outcome exported from the start, at 0
        self.samples = Samples()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop sending new requests (in-flight ones finish or time out)."""
        self._stop.set()

    def _finish(self, outcome: str, e2e: float | None = None, ttft: float | None = None) -> None:
        self.c_requests.labels(outcome).inc()
        with self._lock:
            self.samples.outcomes[outcome] = self.samples.outcomes.get(outcome, 0) + 1
            if e2e is not None and ttft is not None:
                self.samples.e2e.append(e2e)
                self.samples.ttft.append(ttft)

    def _one(self, prompt_tokens: int) -> None:
        cfg = self.cfg
        body = json.dumps(
            {
                "model": cfg.model,
                "prompt": "x" * (4 * prompt_tokens),
                "max_tokens": cfg.output_tokens,
                "stream": True,
            }
        )
        start = time.monotonic()
        deadline = start + cfg.timeout_s
        conn = http.client.HTTPConnection(cfg.host, cfg.port, timeout=cfg.timeout_s)
        outcome, ttft, last, tokens = "error", None, start, 0
        try:
            conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status == 200:
                while time.monotonic() < deadline:
                    line = resp.readline()
                    if not line:
                        break  # the stream ended without [DONE]: an error
                    if not line.startswith(b"data: "):
                        continue
                    if line.strip() == b"data: [DONE]":
                        outcome = "ok" if tokens else "error"
                        break
                    now = time.monotonic()
                    if ttft is None:
                        ttft = now - start
                        self.h_ttft.observe(ttft)
                    else:
                        self.h_itl.observe(now - last)
                    last = now
                    tokens += 1
                    self.c_tokens.inc()
                else:
                    outcome = "timeout"
        except TimeoutError:
            outcome = "timeout"
        except (OSError, http.client.HTTPException):
            outcome = "error"
        finally:
            conn.close()
            with self._lock:
                self._in_flight -= 1
                self.samples.tokens += tokens
            self.g_in_flight.dec()
        e2e = time.monotonic() - start
        if outcome == "ok" and ttft is not None:
            self.h_e2e.observe(e2e)
            self._finish("ok", e2e, ttft)
        elif outcome == "timeout":
            self.h_e2e.observe(e2e)  # a user waited this long: it counts in the latency tail
            self._finish("timeout", e2e, ttft if ttft is not None else e2e)
        else:
            self._finish(outcome)

    def run(self) -> Samples:
        """Send the load until the duration or request bound, then drain; returns the samples."""
        cfg = self.cfg
        rng = random.Random(cfg.seed)
        sizes = [n for n, _ in cfg.prompt_mix]
        weights = [w for _, w in cfg.prompt_mix]
        start = time.monotonic()
        next_at = start
        sent = 0
        while sent < cfg.max_requests and not self._stop.is_set():
            next_at += rng.expovariate(cfg.rate)
            if next_at - start >= cfg.duration_s:
                break
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                break
            sent += 1
            prompt = rng.choices(sizes, weights)[0]
            with self._lock:
                if self._in_flight >= cfg.max_in_flight:
                    full = True
                else:
                    full = False
                    self._in_flight += 1
            if full:
                self._finish("dropped")
                continue
            self.g_in_flight.inc()
            thread = threading.Thread(target=self._one, args=(prompt,), daemon=True)
            thread.start()
            self._threads.append(thread)
            self._threads = [t for t in self._threads if t.is_alive()]
        drain_until = time.monotonic() + cfg.timeout_s + 1.0
        for thread in self._threads:
            thread.join(max(0.0, drain_until - time.monotonic()))
        return self.samples


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = (len(ordered) - 1) * q
    low = int(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def summarise(samples: Samples, config: LoadConfig, elapsed_s: float) -> dict[str, Any]:
    """Exact percentiles and counts from the raw samples."""
    total = sum(samples.outcomes.values())
    return {
        "rate": config.rate,
        "elapsed_s": elapsed_s,
        "requests": total,
        "outcomes": dict(samples.outcomes),
        "tokens": samples.tokens,
        "error_ratio": (total - samples.outcomes.get("ok", 0)) / total if total else None,
        "e2e_p50_s": percentile(samples.e2e, 0.5),
        "e2e_p99_s": percentile(samples.e2e, 0.99),
        "ttft_p50_s": percentile(samples.ttft, 0.5),
        "ttft_p99_s": percentile(samples.ttft, 0.99),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tuneloop-lab load", description=__doc__.splitlines()[0])
    add_load_arguments(p)
    p.add_argument("--metrics-port", type=int, default=0, help="serve /metrics here (0: none)")
    return p


def add_load_arguments(p: argparse.ArgumentParser) -> None:
    """The load options shared by this module and ``tuneloop-lab load``."""
    p.add_argument("--target", default=None, help="balancer HOST:PORT")
    p.add_argument("--rate", type=float, required=True, help="mean arrivals per second")
    p.add_argument("--duration", type=float, required=True, help="seconds to send for")
    p.add_argument("--max-requests", type=int, required=True, help="stop after this many")
    p.add_argument("--output-tokens", type=int, default=16)
    p.add_argument("--prompt-mix", default=DEFAULT_MIX, help="TOKENS:WEIGHT,... prompt lengths")
    p.add_argument("--timeout", type=float, default=20.0, help="per-request deadline (s)")
    p.add_argument("--max-in-flight", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--summary", default=None, help="write a JSON summary here at the end")
    p.add_argument("--linger", type=float, default=0.0, help="keep /metrics up this long after")


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    """A LoadConfig from parsed options; ValueError names the option."""
    if not args.target:
        raise ValueError("--target: required (the balancer HOST:PORT)")
    host, sep, port = str(args.target).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--target: must be HOST:PORT, got {args.target!r}")
    return LoadConfig(
        host=host,
        port=int(port),
        rate=args.rate,
        duration_s=args.duration,
        max_requests=args.max_requests,
        output_tokens=args.output_tokens,
        prompt_mix=tuple(parse_mix(args.prompt_mix)),
        timeout_s=args.timeout,
        max_in_flight=args.max_in_flight,
        seed=args.seed,
    )


def run_from_args(args: argparse.Namespace, metrics_port: int = 0) -> dict[str, Any]:
    """Run the load the options describe; returns (and optionally writes) the summary."""
    cfg = config_from_args(args)
    gen = LoadGenerator(cfg)
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1", registry=gen.registry)
    started = time.monotonic()
    samples = gen.run()
    result = summarise(samples, cfg, time.monotonic() - started)
    if args.summary:
        Path(args.summary).write_text(json.dumps(result, indent=2) + "\n")
    if args.linger > 0:
        time.sleep(args.linger)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = run_from_args(args, args.metrics_port)
    except ValueError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
