"""The inference collector: vLLM, SGLang, TGI and Triton queues, latencies and outcomes.

Every target's ``/metrics`` is fetched concurrently, parsed with ``prometheus_client.parser``
and mapped onto tuneloop's series by the tables in ``inference_engines`` (the mapping is
documented there).

Design decisions:

- A target that cannot be read (connection refused, timeout, HTTP error, a body that is not
  Prometheus text, or metrics of no known engine) gets ``tuneloop_inference_target_up`` = 0
  and one more ``tuneloop_inference_scrape_failures_total{reason}``; the other targets are
  unaffected. The collection itself still succeeds, even when every target is down: a node
  whose inference servers are all down (or still loading) is a healthy agent, and ``up`` = 0
  per target is the accurate report. The collector fails only when the target list itself
  cannot be obtained.
- Each fetch runs under the per-target timeout, and the whole collection under a deadline of
  one timeout per wave of ``max_workers`` targets (plus a small grace), so one slow server
  delays a collection by at most its timeout. A fetch still running at the deadline counts
  as a timeout; its result is discarded.
- The ``engine`` label of ``up`` keeps the engine last detected for an auto target, so the
  series does not change identity when the server goes down; never detected reads ``unknown``.
- Failure counters live as long as their target is configured, and are dropped with it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import requests
import urllib3.exceptions
from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from agent.collectors.base import Collector, CollectorError
from agent.collectors.inference_engines import (
    ENGINES,
    Histogram,
    ParseError,
    detect_engine,
    has_engine_metrics,
    latencies,
    normalise,
    outcomes,
    parse_samples,
)
from tuneloop.catalog import inference as cat

log = logging.getLogger(__name__)

Fetch = Callable[[str, float], str]
TargetSource = Sequence["InferenceTarget"] | Callable[[], Sequence["InferenceTarget"]]

ENGINE_CHOICES = (*ENGINES, "auto")
REASONS = ("timeout", "connection", "http_status", "too_large", "parse", "unrecognised", "error")
MAX_BODY_BYTES = 16 * 1024 * 1024
DEADLINE_GRACE_S = 0.5

_QUANTITY_SPECS = {
    "waiting": cat.INFERENCE_WAITING,
    "running": cat.INFERENCE_RUNNING,
    "kv_cache": cat.INFERENCE_KV_CACHE_USAGE,
    "preemptions": cat.INFERENCE_PREEMPTIONS,
    "prompt_tokens": cat.INFERENCE_PROMPT_TOKENS,
    "generation_tokens": cat.INFERENCE_GENERATION_TOKENS,
    "completed": cat.INFERENCE_REQUESTS_COMPLETED,
}
_LATENCY_SPECS = {
    "ttft": cat.INFERENCE_TTFT,
    "inter_token": cat.INFERENCE_INTER_TOKEN_LATENCY,
    "e2e": cat.INFERENCE_E2E_LATENCY,
}


@dataclass(frozen=True)
class InferenceTarget:
    """One inference server's metrics endpoint; ``engine`` "auto" detects it from the names."""

    name: str
    url: str
    engine: str = "auto"
    model: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(
                f"inference target name: must be a non-empty string, got {self.name!r}"
            )
        where = f"inference target {self.name!r}"
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: url must start with http:// or https://, got {self.url!r}")
        if self.engine not in ENGINE_CHOICES:
            raise ValueError(
                f"{where}: engine must be one of {', '.join(ENGINE_CHOICES)}, got {self.engine!r}"
            )
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ValueError(f"{where}: model must be a non-empty string, got {self.model!r}")


class FetchError(Exception):
    """A target could not be read; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class HttpFetcher:
    """The default fetch: GET with requests, one session per worker thread, size-capped."""

    def __init__(self, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._max_bytes = max_bytes
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"
            self._local.session = session
        return session

    def __call__(self, url: str, timeout_s: float) -> str:
        try:
            with self._session().get(url, timeout=timeout_s, stream=True) as resp:
                if resp.status_code != 200:
                    raise FetchError("http_status", f"HTTP {resp.status_code} from {url}")
                body = bytearray()
                for chunk in resp.iter_content(chunk_size=65536):
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise FetchError(
                            "too_large", f"{url} sent more than {self._max_bytes} bytes"
                        )
                return body.decode("utf-8", errors="replace")
        except requests.Timeout as exc:
            raise FetchError("timeout", f"{url}: timed out after {timeout_s:g} s") from exc
        except requests.ConnectionError as exc:
            cause = exc.args[0] if exc.args else None
            if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
                raise FetchError("timeout", f"{url}: timed out after {timeout_s:g} s") from exc
            raise FetchError("connection", f"{url}: {_short(exc)}") from exc
        except requests.RequestException as exc:
            raise FetchError("error", f"{url}: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def classify(exc: BaseException) -> str:
    """The failure reason label for an exception raised while reading a target."""
    if isinstance(exc, FetchError):
        return exc.reason if exc.reason in REASONS else "error"
    if isinstance(exc, ParseError):
        return "parse"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "connection"
    return "error"


@dataclass(frozen=True)
class TargetResult:
    """What one collection learnt about one target."""

    target: InferenceTarget
    engine: str
    up: bool
    duration_s: float
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    latencies: dict[str, dict[str, Histogram]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, float]] = field(default_factory=dict)
    reason: str | None = None
    error: str | None = None


class InferenceCollector(Collector):
    """Normalised queue, KV-cache and token metrics of the inference servers on this node."""

    name = "inference"

    def __init__(
        self,
        targets: TargetSource,
        fetch: Fetch | None = None,
        timeout_s: float = 2.0,
        max_workers: int = 8,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s: must be a positive number, got {timeout_s!r}")
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers: must be a positive integer, got {max_workers!r}")
        self._targets = targets
        self._fetch: Fetch = fetch if fetch is not None else HttpFetcher()
        self._timeout_s = float(timeout_s)
        self._max_workers = max_workers
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._state = threading.Lock()
        self._engines: dict[str, str] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._was_up: dict[str, bool] = {}
        self._results: tuple[TargetResult, ...] = ()

    @property
    def last_results(self) -> tuple[TargetResult, ...]:
        """Per-target results of the last collection, in target order."""
        return self._results

    def close(self) -> None:
        """Stop the worker threads (fetches in progress finish on their own timeout)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _current_targets(self) -> list[InferenceTarget]:
        try:
            raw = self._targets() if callable(self._targets) else self._targets
            targets = list(raw)
        except Exception as exc:
            raise CollectorError(f"listing inference targets failed: {_short(exc)}") from exc
        unique: dict[str, InferenceTarget] = {}
        for target in targets:
            if not isinstance(target, InferenceTarget):
                raise CollectorError(f"inference targets: expected InferenceTarget, got {target!r}")
            if target.name in unique:
                log.warning("inference target %r listed twice; keeping the first", target.name)
                continue
            unique[target.name] = target
        return list(unique.values())

    def _scrape_one(self, target: InferenceTarget) -> TargetResult:
        start = self._clock()
        engine = target.engine if target.engine != "auto" else self._engines.get(target.name)
        try:
            index = parse_samples(self._fetch(target.url, self._timeout_s))
            if target.engine == "auto":
                engine = detect_engine(index)
                if engine is None:
                    raise FetchError(
                        "unrecognised",
                        f"{target.url}: no vLLM, SGLang, TGI or Triton metrics among "
                        f"{len(index)} series",
                    )
            elif not has_engine_metrics(index, target.engine):
                raise FetchError("unrecognised", f"{target.url}: no {target.engine} metrics")
            assert engine is not None
            values = normalise(index, engine, target.model)
            return TargetResult(
                target,
                engine,
                True,
                self._clock() - start,
                values,
                latencies(index, engine, target.model),
                outcomes(index, engine, target.model),
            )
        except Exception as exc:
            return TargetResult(
                target,
                engine or "unknown",
                False,
                self._clock() - start,
                reason=classify(exc),
                error=_short(exc),
            )

    def _scrape_all(self, targets: list[InferenceTarget]) -> list[TargetResult]:
        if not targets:
            return []
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="inference-scrape"
            )
        start = self._clock()
        futures: list[Future[TargetResult]] = [
            self._executor.submit(self._scrape_one, t) for t in targets
        ]
        waves = math.ceil(len(targets) / self._max_workers)
        wait(futures, timeout=self._timeout_s * waves + DEADLINE_GRACE_S)
        results = []
        for target, future in zip(targets, futures, strict=True):
            if future.done():
                results.append(future.result())
                continue
            future.cancel()
            engine = target.engine if target.engine != "auto" else "unknown"
            engine = self._engines.get(target.name, engine)
            results.append(
                TargetResult(
                    target,
                    engine,
                    False,
                    self._clock() - start,
                    reason="timeout",
                    error=f"{target.url}: no answer within the collection deadline",
                )
            )
        return results

    def _record(self, targets: list[InferenceTarget], results: list[TargetResult]) -> None:
        names = {t.name for t in targets}
        for result in results:
            name = result.target.name
            if result.up:
                self._engines[name] = result.engine
            else:
                key = (name, result.reason or "error")
                self._failures[key] = self._failures.get(key, 0) + 1
            if self._was_up.get(name, True) and not result.up:
                log.warning(
                    "inference target %s is down (%s): %s", name, result.reason, result.error
                )
            elif not self._was_up.get(name, True) and result.up:
                log.info("inference target %s is up again (%s)", name, result.engine)
            self._was_up[name] = result.up
        for stale in set(self._engines) - names:
            del self._engines[stale]
        for stale in set(self._was_up) - names:
            del self._was_up[stale]
        for key in [k for k in self._failures if k[0] not in names]:
            del self._failures[key]
        self._results = tuple(results)

    def scrape(self) -> list[Metric]:
        """Fetch every target now and return the normalised families."""
        targets = self._current_targets()
        results = self._scrape_all(targets)
        with self._state:
            self._record(targets, results)
            failures = dict(self._failures)
        families = {q: spec.family() for q, spec in _QUANTITY_SPECS.items()}
        histograms = {q: spec.histogram_family() for q, spec in _LATENCY_SPECS.items()}
        requests_by_outcome = cat.INFERENCE_REQUESTS.family()
        up = cat.INFERENCE_TARGET_UP.family()
        duration = cat.INFERENCE_SCRAPE_DURATION.family()
        failed = cat.INFERENCE_SCRAPE_FAILURES.family()
        for result in results:
            name = result.target.name
            up.add_metric([name, result.engine], 1.0 if result.up else 0.0)
            duration.add_metric([name, result.engine], max(result.duration_s, 0.0))
            for quantity, per_model in result.values.items():
                for model, value in sorted(per_model.items()):
                    families[quantity].add_metric([name, result.engine, model], value)
            for latency, per_model_h in result.latencies.items():
                for model, hist in sorted(per_model_h.items()):
                    histograms[latency].add_metric(
                        [name, result.engine, model],
                        [(floatToGoString(le), count) for le, count in hist.buckets],
                        hist.sum,
                    )
            for outcome, per_model in sorted(result.outcomes.items()):
                for model, value in sorted(per_model.items()):
                    requests_by_outcome.add_metric([name, result.engine, model, outcome], value)
        for (name, reason), count in sorted(failures.items()):
            failed.add_metric([name, reason], float(count))
        return [*families.values(), *histograms.values(), requests_by_outcome, up, duration, failed]
