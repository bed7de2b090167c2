"""How each inference server's own metrics map onto tuneloop's normalised series.

Each engine's ``/metrics`` text is parsed with ``prometheus_client.parser`` into an index of
samples by name. Counter samples are indexed by their *base* name, without ``_total``, because
the parser adds the suffix where the server left it out (TGI and Triton name counters without
it). Histogram parts keep their suffixes (``_sum``, ``_count``, ``_bucket``).

The mapping (base names; ``{k=v}`` selects series by label, ``!{k=v}`` excludes them):

- waiting: vLLM ``vllm:num_requests_waiting``; SGLang ``sglang:num_queue_reqs``; TGI
  ``tgi_queue_size``; Triton ``nv_inference_pending_request_count`` plus
  ``nv_trt_llm_request_metrics{request_type=waiting}``.
- running: vLLM ``vllm:num_requests_running``; SGLang ``sglang:num_running_reqs``; TGI
  ``tgi_batch_current_size``; Triton ``nv_trt_llm_request_metrics{request_type=active}``
  (TensorRT-LLM models only; none otherwise).
- kv_cache: vLLM ``vllm:kv_cache_usage_perc``, else ``vllm:gpu_cache_usage_perc`` (its name
  before the rename); SGLang ``sglang:token_usage``; TGI none; Triton
  ``nv_trt_llm_kv_cache_block_metrics`` used / max, else ``{kv_cache_block_type=fraction}``.
- preemptions: vLLM ``vllm:num_preemptions``; SGLang ``sglang:num_retracted_requests`` (a
  retraction is SGLang's preemption); TGI and Triton none.
- prompt_tokens: vLLM ``vllm:prompt_tokens``; SGLang ``sglang:prompt_tokens``; TGI
  ``tgi_request_input_length_sum``; Triton none.
- generation_tokens: vLLM ``vllm:generation_tokens``; SGLang ``sglang:generation_tokens``; TGI
  ``tgi_request_generated_tokens_sum``; Triton none.
- completed: vLLM ``vllm:request_success !{finished_reason=abort}``; SGLang
  ``sglang:num_requests``; TGI ``tgi_request_success``; Triton ``nv_inference_request_success``.

Latency histograms (``_bucket``/``_sum``/``_count`` summed per model and ``le``, the engine's
own buckets kept):

- ttft: vLLM ``vllm:time_to_first_token_seconds``; SGLang ``sglang:time_to_first_token_seconds``;
  TGI none (it has no first-token histogram); Triton none (``nv_inference_first_response_
  histogram_ms`` is opt-in and measures the first *response*, which is the whole request for a
  non-decoupled model; /metrics does not say which kind a model is).
- inter_token: vLLM ``vllm:inter_token_latency_seconds``, else ``vllm:time_per_output_token_
  seconds`` (its name before the rename); SGLang ``sglang:inter_token_latency_seconds``, else
  ``sglang:time_per_output_token_seconds``; TGI none (``tgi_request_mean_time_per_token_
  duration`` is a per-request mean that includes prefill, not a token interval); Triton none.
- e2e: vLLM ``vllm:e2e_request_latency_seconds``; SGLang ``sglang:e2e_request_latency_seconds``;
  TGI ``tgi_request_duration``; Triton none (it exports only cumulative microsecond counters).

Request histograms (the views of vLLM's own dashboard: request lengths, queue time, the
prefill/decode split; summed per model and ``le`` like the latencies):

- prompt_length: vLLM ``vllm:request_prompt_tokens``; SGLang ``sglang:prompt_tokens_histogram``
  (only with ``--collect-tokens-histogram``); TGI ``tgi_request_input_length``; Triton none.
- generation_length: vLLM ``vllm:request_generation_tokens``; SGLang
  ``sglang:generation_tokens_histogram`` (same flag); TGI ``tgi_request_generated_tokens``;
  Triton none.
- queue: vLLM ``vllm:request_queue_time_seconds`` (arrival to first scheduled); SGLang
  ``sglang:queue_time_seconds`` (waiting queue to first forward); TGI
  ``tgi_request_queue_duration``; Triton none (``nv_inference_queue_duration_us`` is a
  cumulative counter, ``nv_inference_queue_summary_us`` an opt-in summary whose quantiles
  cannot be summed across replicas).
- prefill: vLLM ``vllm:request_prefill_time_seconds`` (first scheduled to first token); SGLang
  none (``sglang:per_stage_req_latency_seconds{stage}`` times pipeline stages, mostly of
  disaggregated serving, not a request's prefill); TGI none (``tgi_batch_forward_duration
  {method=prefill}`` times batches, not requests); Triton none.
- decode: vLLM ``vllm:request_decode_time_seconds`` (first token to last); SGLang, TGI and
  Triton none, as for prefill.

Request outcomes (``success``, ``error``, ``aborted``; an outcome an engine cannot tell is left
out, never exported as 0):

- vLLM ``vllm:request_success{finished_reason}``: ``abort`` is aborted, ``error`` (newer
  versions) is error, every other reason (stop, length, ...) is success.
- SGLang ``sglang:num_aborted_requests`` is aborted; SGLang counts no errors, and its
  ``num_requests`` includes aborts, so success is not exported.
- TGI ``tgi_request_success`` is success; ``tgi_request_failure{err}`` is error, except
  ``err="validation"`` (the client's malformed request, HTTP 422), which is no outcome of serving.
- Triton ``nv_inference_request_success`` is success; ``nv_inference_request_failure{reason}``
  is error, ``reason="CANCELED"`` aborted (older Triton has no reason label: all error).

Decisions recorded here:

- Every KV metric above is already a 0-1 fraction (vLLM's ``*_perc`` included: 1 means full).
  TGI exports no KV-cache usage, so none is exported for it: a missing series, never a 0.
- Triton has no gauge of requests in execution (``nv_inference_exec_count`` counts batch
  executions, it is not in-flight), so ``running`` is exported only for TensorRT-LLM models.
  Its waiting count adds the core's pending requests (not yet handed to a backend) to the
  TensorRT-LLM batcher's own queue, where a decoupled backend keeps its waiting requests.
- Histogram buckets are the engine's own, never re-bucketed (vLLM's length buckets follow the
  model's ``max_model_len``). Series of one model on one target are summed per ``le`` over the
  boundaries every one of them reports, so a series with a bucket the others lack cannot make
  the sum non-cumulative. Across replicas the fleet dashboard does the same in PromQL.
- Series of one model are combined: counts and counters are summed (vLLM data-parallel engines,
  SGLang ranks, Triton model versions); ratios take the maximum, the fullest engine being the
  one that will preempt first.
- The model label comes from the engine (``model_name`` for vLLM and SGLang, ``model`` for
  Triton); TGI serves one model and labels nothing, so the target's configured model is used,
  else ``unknown``.
- ``completed`` means finished with a response: vLLM's aborted requests are left out; SGLang's
  ``num_requests`` counts every finished request, aborts included, as it offers no finer count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Labels = Mapping[str, str]

ENGINES = ("vllm", "sglang", "tgi", "triton")
QUANTITIES = (
    "waiting",
    "running",
    "kv_cache",
    "preemptions",
    "prompt_tokens",
    "generation_tokens",
    "completed",
)
RATIO_QUANTITIES = frozenset({"kv_cache"})
LATENCIES = ("ttft", "inter_token", "e2e")
REQUEST_HISTOGRAMS = ("prompt_length", "generation_length", "queue", "prefill", "decode")
OUTCOMES = ("success", "error", "aborted")
UNKNOWN_MODEL = "unknown"


@dataclass(frozen=True)
class Source:
    """Series of one sample name, optionally selected (``match``) or dropped (``exclude``)."""

    sample: str
    match: tuple[tuple[str, str], ...] = ()
    exclude: tuple[tuple[str, str], ...] = ()

    def selects(self, labels: Labels) -> bool:
        """Whether a series with these labels belongs to this source."""
        return all(labels.get(k) == v for k, v in self.match) and not any(
            labels.get(k) == v for k, v in self.exclude
        )


@dataclass(frozen=True)
class Ratio:
    """Numerator over denominator, per model (each summed first); skipped where the denominator
    is not positive."""

    numerator: Source
    denominator: Source


@dataclass(frozen=True)
class Total:
    """The sum of whichever of its sources are present, per model."""

    parts: tuple[Source, ...]


Term = Source | Ratio | Total


@dataclass(frozen=True)
class Histogram:
    """A cumulative histogram: ``(le, count)`` pairs sorted by ``le``, ending at +Inf."""

    buckets: tuple[tuple[float, float], ...]
    sum: float

    @property
    def count(self) -> float:
        """Observations in all (the +Inf bucket)."""
        return self.buckets[-1][1]


@dataclass(frozen=True)
class EngineTable:
    """One engine: how to recognise it, where its model label is, and its sources.

    Each quantity and histogram lists alternatives in order of preference; per model, the first
    alternative with a value wins. Latencies and request histograms name histogram families (no
    suffix); outcomes map to the sum of their sources.
    """

    engine: str
    marker_prefixes: tuple[str, ...]
    model_label: str | None
    quantities: Mapping[str, tuple[Term, ...]]
    latencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    outcomes: Mapping[str, Total] = field(default_factory=dict)
    requests: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _trt(kind: str, value: str, name: str) -> Source:
    return Source(name, match=((kind, value),))


_TRT_REQ = "nv_trt_llm_request_metrics"
_TRT_KV = "nv_trt_llm_kv_cache_block_metrics"

TABLES: dict[str, EngineTable] = {
    "vllm": EngineTable(
        "vllm",
        ("vllm:",),
        "model_name",
        {
            "waiting": (Source("vllm:num_requests_waiting"),),
            "running": (Source("vllm:num_requests_running"),),
            "kv_cache": (Source("vllm:kv_cache_usage_perc"), Source("vllm:gpu_cache_usage_perc")),
            "preemptions": (Source("vllm:num_preemptions"),),
            "prompt_tokens": (Source("vllm:prompt_tokens"),),
            "generation_tokens": (Source("vllm:generation_tokens"),),
            "completed": (Source("vllm:request_success", exclude=(("finished_reason", "abort"),)),),
        },
        latencies={
            "ttft": ("vllm:time_to_first_token_seconds",),
            "inter_token": (
                "vllm:inter_token_latency_seconds",
                "vllm:time_per_output_token_seconds",
            ),
            "e2e": ("vllm:e2e_request_latency_seconds",),
        },
        outcomes={
            "success": Total(
                (
                    Source(
                        "vllm:request_success",
                        exclude=(("finished_reason", "abort"), ("finished_reason", "error")),
                    ),
                )
            ),
            "error": Total(
                (Source("vllm:request_success", match=(("finished_reason", "error"),)),)
            ),
            "aborted": Total(
                (Source("vllm:request_success", match=(("finished_reason", "abort"),)),)
            ),
        },
        requests={
            "prompt_length": ("vllm:request_prompt_tokens",),
            "generation_length": ("vllm:request_generation_tokens",),
            "queue": ("vllm:request_queue_time_seconds",),
            "prefill": ("vllm:request_prefill_time_seconds",),
            "decode": ("vllm:request_decode_time_seconds",),
        },
    ),
    "sglang": EngineTable(
        "sglang",
        ("sglang:",),
        "model_name",
        {
            "waiting": (Source("sglang:num_queue_reqs"),),
            "running": (Source("sglang:num_running_reqs"),),
            "kv_cache": (Source("sglang:token_usage"),),
            "preemptions": (Source("sglang:num_retracted_requests"),),
            "prompt_tokens": (Source("sglang:prompt_tokens"),),
            "generation_tokens": (Source("sglang:generation_tokens"),),
            "completed": (Source("sglang:num_requests"),),
        },
        latencies={
            "ttft": ("sglang:time_to_first_token_seconds",),
            "inter_token": (
                "sglang:inter_token_latency_seconds",
                "sglang:time_per_output_token_seconds",
            ),
            "e2e": ("sglang:e2e_request_latency_seconds",),
        },
        outcomes={"aborted": Total((Source("sglang:num_aborted_requests"),))},
        requests={
            "prompt_length": ("sglang:prompt_tokens_histogram",),
            "generation_length": ("sglang:generation_tokens_histogram",),
            "queue": ("sglang:queue_time_seconds",),
        },
    ),
    "tgi": EngineTable(
        "tgi",
        ("tgi_",),
        None,
        {
            "waiting": (Source("tgi_queue_size"),),
            "running": (Source("tgi_batch_current_size"),),
            "prompt_tokens": (Source("tgi_request_input_length_sum"),),
            "generation_tokens": (Source("tgi_request_generated_tokens_sum"),),
            "completed": (Source("tgi_request_success"),),
        },
        latencies={"e2e": ("tgi_request_duration",)},
        outcomes={
            "success": Total((Source("tgi_request_success"),)),
            "error": Total((Source("tgi_request_failure", exclude=(("err", "validation"),)),)),
        },
        requests={
            "prompt_length": ("tgi_request_input_length",),
            "generation_length": ("tgi_request_generated_tokens",),
            "queue": ("tgi_request_queue_duration",),
        },
    ),
    "triton": EngineTable(
        "triton",
        ("nv_inference_",),
        "model",
        {
            "waiting": (
                Total(
                    (
                        Source("nv_inference_pending_request_count"),
                        _trt("request_type", "waiting", _TRT_REQ),
                    )
                ),
            ),
            "running": (_trt("request_type", "active", _TRT_REQ),),
            "kv_cache": (
                Ratio(
                    _trt("kv_cache_block_type", "used", _TRT_KV),
                    _trt("kv_cache_block_type", "max", _TRT_KV),
                ),
                _trt("kv_cache_block_type", "fraction", _TRT_KV),
            ),
            "completed": (Source("nv_inference_request_success"),),
        },
        outcomes={
            "success": Total((Source("nv_inference_request_success"),)),
            "error": Total(
                (Source("nv_inference_request_failure", exclude=(("reason", "CANCELED"),)),)
            ),
            "aborted": Total(
                (Source("nv_inference_request_failure", match=(("reason", "CANCELED"),)),)
            ),
        },
    ),
}
