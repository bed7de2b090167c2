"""Inference-server queue metrics, normalised across vLLM, SGLang, TGI and Triton."""

from agent.catalog.base import gauge

INFERENCE_WAITING = gauge(
    "tuneloop_inference_requests_waiting",
    "Requests queued, waiting for a batch slot.",
    "target",
    "engine",
    "model",
)
INFERENCE_RUNNING = gauge(
    "tuneloop_inference_requests_running",
    "Requests in the running batch.",
    "target",
    "engine",
    "model",
)
INFERENCE_KV_CACHE_USAGE = gauge(
    "tuneloop_inference_kv_cache_usage_ratio",
    "Fraction of the KV cache in use.",
    "target",
    "engine",
    "model",
    unit="ratio",
)

SPECS = (INFERENCE_WAITING, INFERENCE_RUNNING, INFERENCE_KV_CACHE_USAGE)
