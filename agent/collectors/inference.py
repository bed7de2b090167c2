"""The inference collector: vLLM, SGLang, TGI and Triton queues, latencies, request lengths,
phase times and outcomes.

Every target's ``/metrics`` is fetched concurrently, parsed with ``prometheus_client.parser``
and mapped onto tuneloop's series by the tables in ``inference_engines`` (the mapping is
documented there).

Design decisions:

- A target that cannot be read (connection refused, timeout, HTTP error or redirect, a body
  over the cap, duplicate series, too many series or models, a body that is not Prometheus
  text, or metrics of no known engine) gets ``tuneloop_inference_target_up`` = 0 and one more
  ``tuneloop_inference_scrape_failures_total{target,reason}``; the other targets are
  unaffected. The collection itself succeeds when every target got its verdict in time, even
  when every target is down: ``up`` = 0 per target is the accurate report, and the alert reads
  it. The collector fails only when the target list cannot be obtained.
- Each target is fetched on its own daemon thread under its own total deadline (connect and
  whole body, see ``inference_http``), all at once, so a slow target delays nobody: the
  collection takes one target timeout however many targets there are. A fetch still running
  at its deadline is abandoned (it ends itself at the same deadline) and counts as a timeout;
  while it runs, that target is not fetched again, so a stuck target costs one thread.
  Daemon threads never hold the process at exit.
- The target timeout is derived from the scheduler's deadline for this collector: at most the
  deadline less a grace, so a collection always fits its deadline, with 1 target or 50.
- The ``engine`` label of ``up`` keeps the engine last detected for an auto target, so the
  series does not change identity when the server goes down; never detected reads ``unknown``.
- Failure counters live as long as their target is configured, and are dropped with it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from agent.collectors.base import Collector, CollectorError
from agent.collectors.inference_engines import (
    detect_engine,
    has_engine_metrics,
    latencies,
    normalise,
    outcomes,
    request_histograms,
)
from agent.collectors.inference_http import REASONS, FetchError, HttpFetcher
from agent.collectors.inference_parse import MAX_SAMPLES, parse_samples
from agent.collectors.inference_target import (
    READ_NAMES,
    InferenceTarget,
    TargetResult,
    classify,
    short_error,
)
from tuneloop.catalog import inference as cat

log = logging.getLogger(__name__)

Fetch = Callable[[str, float], str]
TargetSource = Sequence["InferenceTarget"] | Callable[[], Sequence["InferenceTarget"]]

MAX_MODELS = 64
MAX_GRACE_S = 1.0

__all__ = [
    "REASONS",
    "FetchError",
    "HttpFetcher",
    "InferenceCollector",
    "InferenceTarget",
    "TargetResult",
    "classify",
]

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
_REQUEST_SPECS = {
    "prompt_length": cat.INFERENCE_REQUEST_PROMPT_TOKENS,
    "generation_length": cat.INFERENCE_REQUEST_GENERATION_TOKENS,
    "queue": cat.INFERENCE_REQUEST_QUEUE,
    "prefill": cat.INFERENCE_REQUEST_PREFILL,
    "decode": cat.INFERENCE_REQUEST_DECODE,
}


def target_timeout(timeout_s: float, deadline_s: float | None) -> float:
    """The per-target timeout that lets a whole collection fit the scheduler's deadline."""
    if deadline_s is None:
        return timeout_s
    grace = min(MAX_GRACE_S, deadline_s * 0.25)  # the collection waits at most half of it more
    return max(min(timeout_s, deadline_s - grace), 0.01)


class InferenceCollector(Collector):
    """Normalised queue, KV-cache and token metrics of the inference servers on this node."""

    name = "inference"

    def __init__(
        self,
        targets: TargetSource,
        fetch: Fetch | None = None,
        timeout_s: float = 2.0,
        *,
        deadline_s: float | None = None,
        max_samples: int = MAX_SAMPLES,
        max_models: int = MAX_MODELS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        for field_name, value in (("timeout_s", timeout_s), ("deadline_s", deadline_s)):
            if value is None and field_name == "deadline_s":
                continue
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{field_name}: must be a positive number, got {value!r}")
        for field_name, count in (("max_samples", max_samples), ("max_models", max_models)):
            if not isinstance(count, int) or count < 1:
                raise ValueError(f"{field_name}: must be a positive integer, got {count!r}")
        self._targets = targets
        self._fetch: Fetch = fetch if fetch is not None else HttpFetcher()
        self._timeout_s = target_timeout(float(timeout_s), deadline_s)
        self._join_grace = min(MAX_GRACE_S, self._timeout_s * 0.25) / 2
        self._max_samples = max_samples
        self._max_models = max_models
        self._clock = clock
        self._state = threading.Lock()
        self._inflight: dict[str, threading.Thread] = {}
        self._engines: dict[str, str] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._was_up: dict[str, bool] = {}
        self._results: tuple[TargetResult, ...] = ()

    @property
    def timeout_s(self) -> float:
        """Each target's total deadline, derived from the configured timeout and deadline."""
        return self._timeout_s

    @property
    def last_results(self) -> tuple[TargetResult, ...]:
        """Per-target results of the last collection, in target order."""
        return self._results

    def inflight(self) -> int:
        """Fetch threads still running (abandoned ones included)."""
        return sum(t.is_alive() for t in self._inflight.values())

    def close(self) -> None:
        """Nothing to stop: abandoned fetches end at their own deadline, on daemon threads."""

    def _current_targets(self) -> list[InferenceTarget]:
        try:
            raw = self._targets() if callable(self._targets) else self._targets
            targets = list(raw)
        except Exception as exc:
            raise CollectorError(f"listing inference targets failed: {short_error(exc)}") from exc
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
            body = self._fetch(target.url, self._timeout_s)
            index = parse_samples(body, READ_NAMES.__contains__, self._max_samples)
            del body
            if target.engine == "auto":
                engine = detect_engine(index)
                if engine is None:
                    raise FetchError(
                        "unrecognised",
                        f"{target.url}: no vLLM, SGLang, TGI or Triton metrics among "
                        f"{len(index)} names",
                    )
            elif not has_engine_metrics(index, target.engine):
                raise FetchError("unrecognised", f"{target.url}: no {target.engine} metrics")
            assert engine is not None
            values = normalise(index, engine, target.model)
            hists = latencies(index, engine, target.model)
            finished = outcomes(index, engine, target.model)
            per_request = request_histograms(index, engine, target.model)
            self._check_models(target, values, hists, finished, per_request)
            return TargetResult(
                target, engine, True, self._clock() - start, values, hists, finished, per_request
            )
        except Exception as exc:
            return TargetResult(
                target,
                engine or "unknown",
                False,
                self._clock() - start,
                reason=classify(exc),
                error=short_error(exc),
            )

    def _check_models(
        self, target: InferenceTarget, *tables: Mapping[str, Mapping[str, object]]
    ) -> None:
        models = {model for table in tables for per_model in table.values() for model in per_model}
        if len(models) > self._max_models:
            raise FetchError(
                "too_many_series",
                f"{target.url}: {len(models)} models, more than the cap of {self._max_models}",
            )

    def _scrape_all(self, targets: list[InferenceTarget]) -> list[TargetResult]:
        if not targets:
            return []
        start = self._clock()
        end = time.monotonic() + self._timeout_s + self._join_grace  # from before any start
        boxes: dict[str, list[TargetResult]] = {}
        busy: set[str] = set()
        for target in targets:
            previous = self._inflight.get(target.name)
            if previous is not None and previous.is_alive():
                busy.add(target.name)  # an abandoned fetch still runs: do not pile up
                continue
            box: list[TargetResult] = []
            thread = threading.Thread(
                target=lambda t=target, b=box: b.append(self._scrape_one(t)),
                name=f"inference-{target.name}"[:60],
                daemon=True,
            )
            boxes[target.name] = box
            self._inflight[target.name] = thread
            thread.start()
        for name in boxes:
            self._inflight[name].join(max(end - time.monotonic(), 0.0))
        for stale in set(self._inflight) - {t.name for t in targets}:
            if not self._inflight[stale].is_alive():
                del self._inflight[stale]
        results = []
        for target in targets:
            box = boxes.get(target.name, [])
            if box:
                results.append(box[0])
                continue
            engine = target.engine if target.engine != "auto" else "unknown"
            engine = self._engines.get(target.name, engine)
            why = (
                "the previous fetch is still running"
                if target.name in busy
                else "no answer within the collection deadline"
            )
            results.append(
                TargetResult(
                    target,
                    engine,
                    False,
                    self._clock() - start,
                    reason="timeout",
                    error=f"{target.url}: {why}",
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
        per_request = {q: spec.histogram_family() for q, spec in _REQUEST_SPECS.items()}
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
            for found, families_h in (
                (result.latencies, histograms),
                (result.requests, per_request),
            ):
                for quantity, per_model_h in found.items():
                    for model, hist in sorted(per_model_h.items()):
                        families_h[quantity].add_metric(
                            [name, result.engine, model],
                            [(floatToGoString(le), count) for le, count in hist.buckets],
                            hist.sum,
                        )
            for outcome, per_model in sorted(result.outcomes.items()):
                for model, value in sorted(per_model.items()):
                    requests_by_outcome.add_metric([name, result.engine, model, outcome], value)
        for (name, reason), count in sorted(failures.items()):
            failed.add_metric([name, reason], float(count))
        return [
            *families.values(),
            *histograms.values(),
            *per_request.values(),
            requests_by_outcome,
            up,
            duration,
            failed,
        ]
