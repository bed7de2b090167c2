"""Inference-server metrics, normalised across vLLM, SGLang, TGI and Triton.

The first three names are a contract (dashboards, alerts, the tuner's signals). The rest follow
the same labels; counters pass the engine's own counter through, so they reset when the server
restarts and ``rate()`` handles that as usual.

Latency histograms pass each engine's own buckets through (converted to seconds where needed),
so a quantile is only as fine as the engine's buckets; every engine tuneloop reads TTFT from
(vLLM, SGLang) has a bucket boundary at 1 s, the threshold of the TTFT SLO in the alerts. The
request histograms (prompt and generation length, queue, prefill and decode time) are the views
of vLLM's own dashboard; an engine that does not measure one exports no series for it.
"""

from tuneloop.catalog.base import counter, gauge, histogram

_SERIES = ("target", "engine", "model")

INFERENCE_WAITING = gauge(
    "tuneloop_inference_requests_waiting",
    "Requests queued, waiting for a batch slot.",
    *_SERIES,
)
INFERENCE_RUNNING = gauge(
    "tuneloop_inference_requests_running",
    "Requests in the running batch.",
    *_SERIES,
)
INFERENCE_KV_CACHE_USAGE = gauge(
    "tuneloop_inference_kv_cache_usage_ratio",
    "Fraction of the KV cache in use.",
    *_SERIES,
    unit="ratio",
)
INFERENCE_PREEMPTIONS = counter(
    "tuneloop_inference_preemptions_total",
    "Requests evicted from the running batch for lack of KV cache (vLLM, SGLang).",
    *_SERIES,
)
INFERENCE_PROMPT_TOKENS = counter(
    "tuneloop_inference_prompt_tokens_total",
    "Prompt (prefill) tokens processed.",
    *_SERIES,
)
INFERENCE_GENERATION_TOKENS = counter(
    "tuneloop_inference_generation_tokens_total",
    "Tokens generated (decode).",
    *_SERIES,
)
INFERENCE_REQUESTS_COMPLETED = counter(
    "tuneloop_inference_requests_completed_total",
    "Requests that finished with a response.",
    *_SERIES,
)
INFERENCE_TTFT = histogram(
    "tuneloop_inference_ttft_seconds",
    "Time to first token, in the engine's own buckets (vLLM, SGLang).",
    *_SERIES,
    unit="seconds",
)
INFERENCE_INTER_TOKEN_LATENCY = histogram(
    "tuneloop_inference_inter_token_latency_seconds",
    "Time between consecutive output tokens, in the engine's own buckets (vLLM, SGLang).",
    *_SERIES,
    unit="seconds",
)
INFERENCE_E2E_LATENCY = histogram(
    "tuneloop_inference_e2e_latency_seconds",
    "Request latency from arrival to the last token, in the engine's own buckets "
    "(vLLM, SGLang, TGI).",
    *_SERIES,
    unit="seconds",
)
INFERENCE_REQUEST_PROMPT_TOKENS = histogram(
    "tuneloop_inference_request_prompt_tokens",
    "Prompt length of finished requests, in tokens, in the engine's own buckets "
    "(vLLM, TGI; SGLang with --collect-tokens-histogram).",
    *_SERIES,
    unit="tokens",
)
INFERENCE_REQUEST_GENERATION_TOKENS = histogram(
    "tuneloop_inference_request_generation_tokens",
    "Tokens generated per finished request, in the engine's own buckets "
    "(vLLM, TGI; SGLang with --collect-tokens-histogram).",
    *_SERIES,
    unit="tokens",
)
INFERENCE_REQUEST_QUEUE = histogram(
    "tuneloop_inference_request_queue_seconds",
    "Time a request waited in the engine's queue before it was first scheduled, in the "
    "engine's own buckets (vLLM, SGLang, TGI).",
    *_SERIES,
    unit="seconds",
)
INFERENCE_REQUEST_PREFILL = histogram(
    "tuneloop_inference_request_prefill_seconds",
    "Time from a request's first scheduling to its first token (prefill), in the engine's own "
    "buckets (vLLM).",
    *_SERIES,
    unit="seconds",
)
INFERENCE_REQUEST_DECODE = histogram(
    "tuneloop_inference_request_decode_seconds",
    "Time from a request's first token to its last (decode), in the engine's own buckets (vLLM).",
    *_SERIES,
    unit="seconds",
)
INFERENCE_REQUESTS = counter(
    "tuneloop_inference_requests_total",
    "Finished requests by outcome (success, error, aborted), as far as the engine tells them.",
    *_SERIES,
    "outcome",
)
INFERENCE_TARGET_UP = gauge(
    "tuneloop_inference_target_up",
    "1 if the inference server's /metrics was read and recognised in the last collection.",
    "target",
    "engine",
)
INFERENCE_SCRAPE_DURATION = gauge(
    "tuneloop_inference_scrape_duration_seconds",
    "Time to fetch and parse the inference server's /metrics in the last collection.",
    "target",
    "engine",
    unit="seconds",
)
INFERENCE_SCRAPE_FAILURES = counter(
    "tuneloop_inference_scrape_failures_total",
    "Failed reads of an inference server's /metrics, by reason.",
    "target",
    "reason",
)

SPECS = (
    INFERENCE_WAITING,
    INFERENCE_RUNNING,
    INFERENCE_KV_CACHE_USAGE,
    INFERENCE_PREEMPTIONS,
    INFERENCE_PROMPT_TOKENS,
    INFERENCE_GENERATION_TOKENS,
    INFERENCE_REQUESTS_COMPLETED,
    INFERENCE_TTFT,
    INFERENCE_INTER_TOKEN_LATENCY,
    INFERENCE_E2E_LATENCY,
    INFERENCE_REQUEST_PROMPT_TOKENS,
    INFERENCE_REQUEST_GENERATION_TOKENS,
    INFERENCE_REQUEST_QUEUE,
    INFERENCE_REQUEST_PREFILL,
    INFERENCE_REQUEST_DECODE,
    INFERENCE_REQUESTS,
    INFERENCE_TARGET_UP,
    INFERENCE_SCRAPE_DURATION,
    INFERENCE_SCRAPE_FAILURES,
)
