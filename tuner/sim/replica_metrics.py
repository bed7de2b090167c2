"""The real-time replica's /metrics: vLLM's names and labels, so the agent reads it as vLLM.

Besides queue depth, KV cache, token counters, preemptions and the TTFT, time-per-output-token
and end-to-end histograms, a finished request is observed in vLLM's request histograms:
prompt and generation length (``vllm:request_prompt_tokens``, ``..._generation_tokens``, in
vLLM's 1-2-5 buckets up to the model's context length), and the time it spent queued (arrival
to first admission), in prefill (first admission to first token) and in decode (first token to
last), in vLLM's request-latency buckets. As in vLLM, a preempted request keeps its first
admission and first token, so recomputation counts as decode; an aborted request is counted in
``vllm:request_success_total{finished_reason="abort"}`` only.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REQUEST_TIME_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
MAX_MODEL_LEN = 8192  # a Llama-3-8B-class model's context


def length_buckets(max_len: int) -> tuple[float, ...]:
    """1, 2, 5, 10, 20, 50, ... up to ``max_len``: vLLM's buckets for request lengths."""
    out: list[float] = []
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale > max_len:
                return tuple(out)
            out.append(float(step * scale))
        scale *= 10


class ReplicaMetrics:
    """One model's vLLM-style families in their own registry, labelled with the model."""

    def __init__(self, model: str, max_model_len: int = MAX_MODEL_LEN) -> None:
        r = self.registry = CollectorRegistry()
        lbl = ["model_name"]

        def hist(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, lbl, buckets=buckets, registry=r)

        self.waiting = Gauge("vllm:num_requests_waiting", "Requests waiting.", lbl, registry=r)
        self.running = Gauge("vllm:num_requests_running", "Requests running.", lbl, registry=r)
        self.kv = Gauge("vllm:kv_cache_usage_perc", "KV cache usage.", lbl, registry=r)
        self.ttft = hist("vllm:time_to_first_token_seconds", "TTFT.", BUCKETS)
        self.e2e = hist("vllm:e2e_request_latency_seconds", "E2E.", BUCKETS)
        self.prompt = Counter("vllm:prompt_tokens", "Prefill tokens processed.", lbl, registry=r)
        self.generation = Counter(
            "vllm:generation_tokens", "Generation tokens produced.", lbl, registry=r
        )
        self.preemptions = Counter(
            "vllm:num_preemptions", "Sequences preempted for KV cache.", lbl, registry=r
        )
        self.tpot = hist(
            "vllm:time_per_output_token_seconds", "Time between output tokens.", BUCKETS
        )
        self.finished = Counter(
            "vllm:request_success",
            "Finished requests by reason.",
            ["model_name", "finished_reason"],
            registry=r,
        )
        lengths = length_buckets(max_model_len)
        self.prompt_length = hist(
            "vllm:request_prompt_tokens", "Prompt tokens per finished request.", lengths
        )
        self.generation_length = hist(
            "vllm:request_generation_tokens", "Generated tokens per finished request.", lengths
        )
        self.queue_time = hist(
            "vllm:request_queue_time_seconds", "Time in the WAITING phase.", REQUEST_TIME_BUCKETS
        )
        self.prefill_time = hist(
            "vllm:request_prefill_time_seconds", "Time in the PREFILL phase.", REQUEST_TIME_BUCKETS
        )
        self.decode_time = hist(
            "vllm:request_decode_time_seconds", "Time in the DECODE phase.", REQUEST_TIME_BUCKETS
        )
        for counter in (self.prompt, self.generation, self.preemptions):
            counter.labels(model)  # exported from the start at 0, as vLLM does

    def request_finished(
        self,
        model: str,
        lengths: tuple[int, int],
        times: tuple[float, float, float, float],
    ) -> None:
        """A request finished normally: ``lengths`` is (prompt, generated) tokens, ``times``
        its (arrival, first admission, first token, last token) on one monotonic clock."""
        arrived, scheduled, first, last = times
        self.e2e.labels(model).observe(last - arrived)
        self.finished.labels(model, "length").inc()
        self.prompt_length.labels(model).observe(lengths[0])
        self.generation_length.labels(model).observe(lengths[1])
        self.queue_time.labels(model).observe(scheduled - arrived)
        self.prefill_time.labels(model).observe(first - scheduled)
        self.decode_time.labels(model).observe(last - first)
