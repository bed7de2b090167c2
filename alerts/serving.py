"""Serving alerts: queue backlog, KV-cache saturation, and SLO burn rates (SRE workbook).

SLOs, as documented constants: 99% of requests (success or error; aborted requests are the
client's choice and left out) succeed, and 99% of requests get their first token within 1 s.
1 s is a bucket boundary of both engines that export TTFT (vLLM and SGLang); TGI and Triton
export no TTFT histogram, so the latency SLO covers vLLM and SGLang models only, and the error
SLO covers the engines that count errors (TGI, Triton, and vLLM when it reports
finished_reason="error"); SGLang counts none.

Multi-window, multi-burn-rate: page when the 1h and 5m burn rates both exceed 14.4x, or the 6h
and 30m both exceed 6x; open a ticket when 1d and 2h exceed 3x, or 3d and 6h exceed 1x.
"""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.model import Alert, Case, Group, Recording, Runbook

ERROR_SLO = 0.99
TTFT_SLO = 0.99
TTFT_THRESHOLD_LE = "1.0"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
QUEUE_BACKLOG_REQUESTS = 10
KV_CACHE_FULL_RATIO = 0.95

ERROR_RECORD = "model:tuneloop_inference_errors:ratio_rate{w}"
TTFT_RECORD = "model:tuneloop_inference_ttft_slow:ratio_rate{w}"


def _recordings() -> tuple[Recording, ...]:
    out = []
    for w in WINDOWS:
        out.append(
            Recording(
                ERROR_RECORD.format(w=w),
                f'sum by (model) (rate(tuneloop_inference_requests_total{{outcome="error"}}[{w}])) '
                f'/ sum by (model) (rate(tuneloop_inference_requests_total{{outcome=~"success|error"}}[{w}]))',
            )
        )
        out.append(
            Recording(
                TTFT_RECORD.format(w=w),
                f'1 - sum by (model) (rate(tuneloop_inference_ttft_seconds_bucket{{le="{TTFT_THRESHOLD_LE}"}}[{w}])) '
                f"/ sum by (model) (rate(tuneloop_inference_ttft_seconds_count[{w}]))",
            )
        )
    return tuple(out)


def _burn(record: str, slo: float, pairs: tuple[tuple[str, str, float], ...]) -> str:
    budget = 1 - slo
    terms = []
    for long, short, factor in pairs:
        threshold = f"{round(factor * budget, 6):g}"
        terms.append(
            f"({record.format(w=long)} > {threshold} and {record.format(w=short)} > {threshold})"
        )
    return "\n  or\n".join(terms)


PAGE = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
TICKET = (("1d", "2h", 3.0), ("3d", "6h", 1.0))

_SLO_PROMQL_ERRORS = (
    "sum by (model, outcome) (rate(tuneloop_inference_requests_total[5m]))",
    'sum by (target, model) (rate(tuneloop_inference_requests_total{outcome="error"}[5m]))',
    "sum by (model) (tuneloop_inference_requests_waiting)",
    "max by (target, model) (tuneloop_inference_kv_cache_usage_ratio)",
    "tuneloop_inference_target_up == 0",
    "increase(tuneloop_tuner_trials_total[6h])",
)
_SLO_PROMQL_TTFT = (
    "histogram_quantile(0.99, sum by (model, le) (rate(tuneloop_inference_ttft_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (target, le) (rate(tuneloop_inference_ttft_seconds_bucket[5m])))",
    "sum by (model) (tuneloop_inference_requests_waiting)",
    "max by (target, model) (tuneloop_inference_kv_cache_usage_ratio)",
    "rate(tuneloop_inference_preemptions_total[5m])",
    "increase(tuneloop_tuner_trials_total[6h])",
)
_SERVING_COMMANDS = (
    "kubectl get pods -A -o wide -l app.kubernetes.io/component=inference",
    "kubectl -n NAMESPACE logs POD --since=30m | tail -100",
    "kubectl -n NAMESPACE describe pod POD",
    "tuneloop status --state /var/lib/tuneloop",
)


def _requests(error: int, success: int, interval: str, count: int) -> tuple[tuple[str, str], ...]:
    labels = 'target="llm/vllm-0",engine="vllm",model="m"'
    return (
        (f'tuneloop_inference_requests_total{{{labels},outcome="error"}}', f"0+{error}x{count}"),
        (
            f'tuneloop_inference_requests_total{{{labels},outcome="success"}}',
            f"0+{success}x{count}",
        ),
        (
            f'tuneloop_inference_requests_total{{{labels},outcome="aborted"}}',
            f"0+{success}x{count}",
        ),
    )


def _ttft(fast: int, total: int, interval: str, count: int) -> tuple[tuple[str, str], ...]:
    labels = 'target="llm/vllm-0",engine="vllm",model="m"'
    return (
        (f'tuneloop_inference_ttft_seconds_bucket{{{labels},le="1.0"}}', f"0+{fast}x{count}"),
        (f"tuneloop_inference_ttft_seconds_count{{{labels}}}", f"0+{total}x{count}"),
    )


def _error_runbook(speed: str) -> Runbook:
    return Runbook(
        meaning=f"Model requests fail fast enough to spend the error budget ({1 - ERROR_SLO:.0%} "
        f"of requests) {speed}. The ratio counts requests the engine reports as errors "
        "against those that succeeded or failed; client aborts are left out.",
        impact="Users get errors from this model. At the page rate the month's budget is gone "
        "in about two days; at the ticket rate within the month.",
        diagnosis_notes="Find which replicas fail (by target) and whether the tuner changed "
        "anything just before the ratio rose.",
        promql=_SLO_PROMQL_ERRORS,
        commands=_SERVING_COMMANDS,
        mitigation=(
            "If the tuner changed batch size, replicas or balancer weights shortly before, roll "
            "back (below): that is the fastest safe fix.",
            "If one target fails, take it out of the balancer or delete its pod so it restarts.",
            "If every target fails, look at the server logs for the error (OOM, bad request "
            "mix, model load failure) and scale up if the servers reject load.",
        ),
    )


def _ttft_runbook(speed: str) -> Runbook:
    return Runbook(
        meaning=f"More than the budgeted {1 - TTFT_SLO:.0%} of requests wait longer than "
        f"{TTFT_THRESHOLD_LE} s for their first token, {speed}.",
        impact="Users wait visibly before text starts streaming; interactive clients time out.",
        diagnosis_notes="Long first-token times come from queueing (waiting requests), from "
        "prefill of long prompts, or from KV-cache pressure (preemptions).",
        promql=_SLO_PROMQL_TTFT,
        commands=_SERVING_COMMANDS,
        mitigation=(
            "If requests are waiting, add replicas (kubectl scale) or raise the HPA maximum.",
            "If the tuner raised batch size or lowered replicas shortly before, roll back (below).",
            "If KV-cache use is near 1 with preemptions, lower max concurrent sequences or "
            "move the model to GPUs with more memory.",
        ),
    )


GROUPS = [
    Group(
        "tuneloop-serving",
        (
            Alert(
                name="TuneloopInferenceQueueBacklog",
                expr=f"tuneloop_inference_requests_waiting > {QUEUE_BACKLOG_REQUESTS}",
                severity="warning",
                for_="15m",
                summary="An inference server has had a queue backlog for 15 minutes.",
                description="{{ $labels.target }} ({{ $labels.engine }}, {{ $labels.model }}) "
                "has had {{ $value }} requests waiting for 15 minutes.",
                runbook=Runbook(
                    meaning=f"More than {QUEUE_BACKLOG_REQUESTS} requests have waited for a batch "
                    "slot on this server for 15 minutes: it receives more than it can run.",
                    impact="Every queued request adds to time to first token; the TTFT SLO burns.",
                    promql=(
                        "tuneloop_inference_requests_waiting",
                        "tuneloop_inference_requests_running",
                        "tuneloop_inference_kv_cache_usage_ratio",
                        "sum by (target) (rate(tuneloop_inference_requests_total[5m]))",
                        "tuneloop_tuner_knob_value",
                    ),
                    commands=_SERVING_COMMANDS,
                    mitigation=(
                        "Compare targets of the same model: one backlogged replica while others "
                        "are idle means the balancer weights are off; many means too few replicas.",
                        "Scale the model's Deployment up, or raise its HPA maximum.",
                        "If the tuner changed weights or replicas shortly before, roll back (below).",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_inference_requests_waiting{target="llm/vllm-0",engine="vllm",model="m"}',
                            "25x20",
                        ),
                    ),
                    eval_time="20m",
                    labels={"target": "llm/vllm-0", "engine": "vllm", "model": "m"},
                    description="llm/vllm-0 (vllm, m) has had 25 requests waiting for 15 minutes.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_inference_requests_waiting{target="llm/vllm-0",engine="vllm",model="m"}',
                            "25x10 3x10",
                        ),
                    ),
                    eval_time="20m",
                ),
            ),
            Alert(
                name="TuneloopInferenceKvCacheSaturated",
                expr=f"tuneloop_inference_kv_cache_usage_ratio > {KV_CACHE_FULL_RATIO}",
                severity="warning",
                for_="15m",
                summary="An inference server's KV cache has been nearly full for 15 minutes.",
                description="{{ $labels.target }} ({{ $labels.model }}) KV cache is "
                "{{ $value | humanizePercentage }} full.",
                runbook=Runbook(
                    meaning=f"More than {KV_CACHE_FULL_RATIO:.0%} of the server's KV-cache blocks "
                    "are in use, continuously.",
                    impact="New sequences cannot start and running ones get preempted "
                    "(recomputed later): throughput drops and latency rises.",
                    promql=(
                        "tuneloop_inference_kv_cache_usage_ratio",
                        "rate(tuneloop_inference_preemptions_total[5m])",
                        "tuneloop_inference_requests_running",
                        "tuneloop_inference_requests_waiting",
                    ),
                    commands=_SERVING_COMMANDS,
                    mitigation=(
                        "Add replicas so each holds fewer sequences.",
                        "Lower the server's maximum concurrent sequences (vLLM --max-num-seqs) "
                        "if preemptions are high.",
                        "If the tuner raised batch size shortly before, roll back (below).",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_inference_kv_cache_usage_ratio{target="llm/vllm-0",engine="vllm",model="m"}',
                            "0.99x20",
                        ),
                    ),
                    eval_time="20m",
                    labels={"target": "llm/vllm-0", "engine": "vllm", "model": "m"},
                    description="llm/vllm-0 (m) KV cache is 99% full.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_inference_kv_cache_usage_ratio{target="llm/vllm-0",engine="vllm",model="m"}',
                            "0.8x20",
                        ),
                    ),
                    eval_time="20m",
                ),
            ),
            Alert(
                name="TuneloopInferenceErrorBudgetBurn",
                expr=_burn(ERROR_RECORD, ERROR_SLO, PAGE),
                severity="critical",
                for_="2m",
                summary="A model is burning its error budget fast.",
                description="{{ $labels.model }}: {{ $value | humanizePercentage }} of requests "
                "failed over the long window (SLO 99% succeed).",
                runbook=_error_runbook("within hours (14.4x over 1h, or 6x over 6h)"),
                fires=Case(
                    series=_requests(20, 80, "1m", 120),
                    eval_time="70m",
                    labels={"model": "m"},
                    description="m: 20% of requests failed over the long window (SLO 99% succeed).",
                ),
                quiet=Case(series=_requests(1, 99, "1m", 120), eval_time="70m"),
            ),
            Alert(
                name="TuneloopInferenceErrorBudgetSlowBurn",
                expr=_burn(ERROR_RECORD, ERROR_SLO, TICKET),
                severity="warning",
                for_="15m",
                summary="A model is steadily burning its error budget.",
                description="{{ $labels.model }}: {{ $value | humanizePercentage }} of requests "
                "failed over the long window (SLO 99% succeed).",
                runbook=_error_runbook("within days (3x over 1d, or 1x over 3d)"),
                fires=Case(
                    series=_requests(50, 950, "10m", 20),
                    eval_time="3h",
                    interval="10m",
                    labels={"model": "m"},
                    description="m: 5% of requests failed over the long window (SLO 99% succeed).",
                ),
                quiet=Case(series=_requests(1, 199, "10m", 20), eval_time="3h", interval="10m"),
            ),
            Alert(
                name="TuneloopInferenceTtftBudgetBurn",
                expr=_burn(TTFT_RECORD, TTFT_SLO, PAGE),
                severity="critical",
                for_="2m",
                summary="A model is burning its time-to-first-token budget fast.",
                description="{{ $labels.model }}: {{ $value | humanizePercentage }} of requests "
                "waited over 1 s for the first token over the long window (SLO 99% within 1 s).",
                runbook=_ttft_runbook("at a rate that spends the month's budget in about two days"),
                fires=Case(
                    series=_ttft(70, 100, "1m", 120),
                    eval_time="70m",
                    labels={"model": "m"},
                    description="m: 30% of requests waited over 1 s for the first token "
                    "over the long window (SLO 99% within 1 s).",
                ),
                quiet=Case(series=_ttft(995, 1000, "1m", 120), eval_time="70m"),
            ),
            Alert(
                name="TuneloopInferenceTtftBudgetSlowBurn",
                expr=_burn(TTFT_RECORD, TTFT_SLO, TICKET),
                severity="warning",
                for_="15m",
                summary="A model is steadily burning its time-to-first-token budget.",
                description="{{ $labels.model }}: {{ $value | humanizePercentage }} of requests "
                "waited over 1 s for the first token over the long window (SLO 99% within 1 s).",
                runbook=_ttft_runbook("at a rate that spends the month's budget within the month"),
                fires=Case(
                    series=_ttft(950, 1000, "10m", 20),
                    eval_time="3h",
                    interval="10m",
                    labels={"model": "m"},
                    description="m: 5% of requests waited over 1 s for the first token "
                    "over the long window (SLO 99% within 1 s).",
                ),
                quiet=Case(series=_ttft(998, 1000, "10m", 20), eval_time="3h", interval="10m"),
            ),
        ),
        recordings=_recordings(),
    )
]
