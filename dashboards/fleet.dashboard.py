"""Fleet and SLO overview: traffic, tokens, latency, errors, queues and KV cache per model.

The views of vLLM's own dashboard, from the agent's normalised ``tuneloop_inference_*``
metrics: request rate, prompt and generation tokens per second (the prefill/decode split in
tokens), TTFT, inter-token and end-to-end latency as quantiles and heatmaps, request prompt and
generation length heatmaps, queue time, the prefill/decode time split, queue depth, KV cache and
preemptions. The request-length and phase-time panels sum only the bucket boundaries every
replica of a model reports (``bucket_rate``), since vLLM's length buckets follow each replica's
context length and engines bucket times differently.
"""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.panels import bucket_rate, heatmap, label_variable, panel, rows
from tuneloop.generate.panels import dashboard as make

S = 'cluster=~"$cluster", model=~"$model", target=~"$target"'


def quantiles(metric: str, common: bool = False) -> tuple[tuple[str, str], ...]:
    return tuple(
        (
            f"histogram_quantile({q}, {bucket_rate(metric, S, 'model', common)})",
            f"P{int(q * 100)} {{{{model}}}}",
        )
        for q in (0.5, 0.9, 0.99)
    )


def mean(metric: str) -> str:
    return f"sum by (model) (rate({metric}_sum{{{S}}}[$__rate_interval])) / sum by (model) (rate({metric}_count{{{S}}}[$__rate_interval]))"


dashboard = make(
    "tuneloop / Fleet and SLOs",
    "Request rate, tokens, TTFT, inter-token and end-to-end latency, request lengths, queue "
    "time, the prefill/decode time split, errors, queues and KV cache.",
    [
        label_variable("cluster", "tuneloop_inference_target_up"),
        label_variable("model", "tuneloop_inference_requests_running", 'cluster=~"$cluster"'),
        label_variable("target", "tuneloop_inference_requests_running", 'model=~"$model"'),
    ],
    rows(
        (
            "Traffic and errors",
            [
                panel(
                    "Request rate by outcome",
                    "reqps",
                    (
                        f"sum by (model, outcome) (rate(tuneloop_inference_requests_total{{{S}}}[$__rate_interval]))",
                        "{{model}} {{outcome}}",
                    ),
                ),
                panel(
                    "Error ratio",
                    "percentunit",
                    (
                        f'sum by (model) (rate(tuneloop_inference_requests_total{{{S}, outcome="error"}}[$__rate_interval])) / sum by (model) (rate(tuneloop_inference_requests_total{{{S}, outcome=~"success|error"}}[$__rate_interval]))',
                        "{{model}}",
                    ),
                ),
                panel(
                    "Error budget burn (1h)",
                    "percentunit",
                    (
                        'model:tuneloop_inference_errors:ratio_rate1h{model=~"$model"}',
                        "errors {{model}}",
                    ),
                    (
                        'model:tuneloop_inference_ttft_slow:ratio_rate1h{model=~"$model"}',
                        "TTFT over its threshold {{model}}",
                    ),
                    description="Share of requests over the last hour that failed, and that "
                    "missed the model's first-token threshold (alerts/slos.yaml): the ratios the "
                    "burn-rate alerts compare with each model's error budget.",
                ),
                panel(
                    "Requests completed per second",
                    "reqps",
                    (
                        f"sum by (model) (rate(tuneloop_inference_requests_completed_total{{{S}}}[$__rate_interval]))",
                        "{{model}}",
                    ),
                ),
            ],
        ),
        (
            "Tokens",
            [
                panel(
                    "Prompt and generation tokens per second",
                    "short",
                    (
                        f"sum by (model) (rate(tuneloop_inference_prompt_tokens_total{{{S}}}[$__rate_interval]))",
                        "prompt (prefill) {{model}}",
                    ),
                    (
                        f"sum by (model) (rate(tuneloop_inference_generation_tokens_total{{{S}}}[$__rate_interval]))",
                        "generation (decode) {{model}}",
                    ),
                ),
                panel(
                    "Generated tokens per second by replica",
                    "short",
                    (
                        f"sum by (target) (rate(tuneloop_inference_generation_tokens_total{{{S}}}[$__rate_interval]))",
                        "{{target}}",
                    ),
                ),
            ],
        ),
        (
            "Latency",
            [
                panel("Time to first token", "s", *quantiles("tuneloop_inference_ttft_seconds")),
                panel(
                    "Inter-token latency",
                    "s",
                    *quantiles("tuneloop_inference_inter_token_latency_seconds"),
                ),
                panel(
                    "End-to-end latency", "s", *quantiles("tuneloop_inference_e2e_latency_seconds")
                ),
                heatmap("TTFT distribution", "tuneloop_inference_ttft_seconds", S),
                heatmap(
                    "End-to-end latency distribution", "tuneloop_inference_e2e_latency_seconds", S
                ),
                heatmap(
                    "Inter-token latency distribution",
                    "tuneloop_inference_inter_token_latency_seconds",
                    S,
                ),
                panel(
                    "TTFT P99 by replica",
                    "s",
                    (
                        f"histogram_quantile(0.99, sum by (target, le) (rate(tuneloop_inference_ttft_seconds_bucket{{{S}}}[$__rate_interval])))",
                        "{{target}}",
                    ),
                ),
            ],
        ),
        (
            "Request lengths and phases",
            [
                heatmap(
                    "Prompt length distribution",
                    "tuneloop_inference_request_prompt_tokens",
                    S,
                    common=True,
                ),
                heatmap(
                    "Generation length distribution",
                    "tuneloop_inference_request_generation_tokens",
                    S,
                    common=True,
                ),
                panel(
                    "Queue time",
                    "s",
                    *quantiles("tuneloop_inference_request_queue_seconds", common=True),
                ),
                panel(
                    "Time per request by phase (mean)",
                    "s",
                    (mean("tuneloop_inference_request_queue_seconds"), "queue {{model}}"),
                    (mean("tuneloop_inference_request_prefill_seconds"), "prefill {{model}}"),
                    (mean("tuneloop_inference_request_decode_seconds"), "decode {{model}}"),
                    stack=True,
                    description="Where a request's time goes, phase by phase (vLLM): waiting "
                    "for a batch slot, prefill (first scheduling to first token) and decode "
                    "(first token to last), stacked. Engines that do not measure a phase show "
                    "none.",
                ),
                panel(
                    "Prefill time",
                    "s",
                    *quantiles("tuneloop_inference_request_prefill_seconds", common=True),
                ),
                panel(
                    "Decode time",
                    "s",
                    *quantiles("tuneloop_inference_request_decode_seconds", common=True),
                ),
            ],
        ),
        (
            "Queues and KV cache",
            [
                panel(
                    "Requests waiting",
                    "short",
                    (f"tuneloop_inference_requests_waiting{{{S}}}", "{{target}}"),
                ),
                panel(
                    "Requests running",
                    "short",
                    (f"tuneloop_inference_requests_running{{{S}}}", "{{target}}"),
                ),
                panel(
                    "KV-cache use",
                    "percentunit",
                    (f"tuneloop_inference_kv_cache_usage_ratio{{{S}}}", "{{target}}"),
                ),
                panel(
                    "Preemptions per second",
                    "short",
                    (
                        f"rate(tuneloop_inference_preemptions_total{{{S}}}[$__rate_interval])",
                        "{{target}}",
                    ),
                ),
            ],
        ),
    ),
    tags=["slo", "inference"],
)
