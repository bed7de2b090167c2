"""Serving alerts: queue backlog, KV-cache saturation, and SLO burn rates (SRE workbook).

SLOs come per model from alerts/slos.yaml (see tuneloop.generate.slos): an availability
objective (success or error; aborted requests are the client's choice and left out) and a TTFT
objective (the share of requests whose first token comes within a threshold). TGI and Triton
export no TTFT histogram, so the latency SLO covers vLLM and SGLang models only, and the error
SLO covers the engines that count errors (TGI, Triton, and vLLM when it reports
finished_reason="error"); SGLang counts none.

Multi-window, multi-burn-rate: page when the 1h and 5m burn rates both exceed 14.4x, or the 6h
and 30m both exceed 6x; open a ticket when 1d and 2h exceed 3x, or 3d and 6h exceed 1x.
The promtool cases run two models with different SLOs side by side, so each case shows that a
model's own objective, not the other's, decides.
"""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from pathlib import Path

from tuneloop.generate import slos
from tuneloop.generate.model import Alert, Case, Group, Runbook

SLOS = slos.load(Path(__file__).resolve().parent / "slos.yaml")
QUEUE_BACKLOG_REQUESTS = 10
KV_CACHE_FULL_RATIO = 0.95
# The models of the promtool cases: one on the file's default SLO, one with its own.
DEFAULT_MODEL = "m"
BIG_MODEL = "meta-llama/Llama-3.1-405B-Instruct"
_BY_MODEL = {e.model: e for e in SLOS}
_DEFAULT = _BY_MODEL[slos.DEFAULT_MODEL]
_BIG = _BY_MODEL[BIG_MODEL]

_SLO_PROMQL_ERRORS = (
    "sum by (cluster, model, outcome) (rate(tuneloop_inference_requests_total[5m]))",
    'sum by (cluster, target, model) (rate(tuneloop_inference_requests_total{outcome="error"}[5m]))',
    "sum by (cluster, model) (tuneloop_inference_requests_waiting)",
    "max by (target, model) (tuneloop_inference_kv_cache_usage_ratio)",
    "tuneloop_inference_target_up == 0",
    "increase(tuneloop_tuner_trials_total[6h])",
)
_SLO_PROMQL_TTFT = (
    "histogram_quantile(0.99, sum by (cluster, model, le) (rate(tuneloop_inference_ttft_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (target, le) (rate(tuneloop_inference_ttft_seconds_bucket[5m])))",
    "sum by (cluster, model) (tuneloop_inference_requests_waiting)",
    "max by (target, model) (tuneloop_inference_kv_cache_usage_ratio)",
    "rate(tuneloop_inference_preemptions_total[5m])",
    "increase(tuneloop_tuner_trials_total[6h])",
)
TUNER_SHELL_STATUS = (
    "kubectl -n tuneloop exec tuneloop-tuner-shell -- tuneloop status --state /var/lib/tuneloop"
    "  # the shell pod: see the last section"
)
_SERVING_COMMANDS = (
    "# The target label is NAMESPACE/POD of the inference server (vLLM, KServe, any chart).",
    "kubectl -n NAMESPACE get pod POD -o wide",
    "kubectl -n NAMESPACE get pods -o wide | grep -i MODEL_NAME   # the model's other replicas",
    "kubectl -n NAMESPACE logs POD --since=30m | tail -100",
    "kubectl -n NAMESPACE describe pod POD",
    TUNER_SHELL_STATUS,
)


def _series(model: str) -> str:
    return (
        f'cluster="c1",target="llm/{model.split("/")[-1].lower()}-0",engine="vllm",model="{model}"'
    )


def _requests(model: str, error: int, success: int, count: int) -> tuple[tuple[str, str], ...]:
    labels = _series(model)
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


def _ttft(
    model: str, within: dict[str, int], total: int, count: int
) -> tuple[tuple[str, str], ...]:
    """TTFT buckets (``le`` -> requests within it per step) and the count, per step."""
    labels = _series(model)
    buckets = tuple(
        (f'tuneloop_inference_ttft_seconds_bucket{{{labels},le="{le}"}}', f"0+{n}x{count}")
        for le, n in within.items()
    )
    return (*buckets, (f"tuneloop_inference_ttft_seconds_count{{{labels}}}", f"0+{total}x{count}"))


def _two(
    a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    return a + b


def _error_runbook(speed: str) -> Runbook:
    return Runbook(
        meaning="Model requests fail fast enough to spend the model's error budget (1 minus its "
        f"availability objective in alerts/slos.yaml, named by the slo_objective label) {speed}. "
        "The ratio counts requests the engine reports as errors against those that succeeded "
        "or failed; client aborts are left out.",
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
        meaning="More requests than the model's TTFT objective allows (alerts/slos.yaml, named by "
        f"the slo_objective label) wait longer than its threshold for their first token, {speed}.",
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
                        "sum by (target, outcome) (rate(tuneloop_inference_requests_total[5m]))",
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
                expr=slos.burn_expr(slos.ERROR_RECORD, SLOS, slos.PAGE, "availability"),
                severity="critical",
                for_="2m",
                summary="A model is burning its error budget fast.",
                description="{{ $labels.model }}: {{ $value | humanizePercentage }} of requests "
                "failed over the long window (SLO {{ $labels.slo_objective }}).",
                runbook=_error_runbook("within hours (14.4x over 1h, or 6x over 6h)"),
                # 4% errors: over 6x the large model's 0.5% budget, under 6x the default 1%.
                fires=Case(
                    series=_two(
                        _requests(DEFAULT_MODEL, 4, 96, 120), _requests(BIG_MODEL, 4, 96, 120)
                    ),
                    eval_time="70m",
                    labels={
                        "cluster": "c1",
                        "model": BIG_MODEL,
                        "slo_objective": slos.availability_label(_BIG),
                    },
                    description=f"{BIG_MODEL}: 4% of requests failed over the long window "
                    f"(SLO {slos.availability_label(_BIG)}).",
                ),
                quiet=Case(
                    series=_two(
                        _requests(DEFAULT_MODEL, 2, 98, 120), _requests(BIG_MODEL, 2, 98, 120)
                    ),
                    eval_time="70m",
                ),
            ),
            Alert(
                name="TuneloopInferenceErrorBudgetSlowBurn",
                expr=slos.burn_expr(slos.ERROR_RECORD, SLOS, slos.TICKET, "availability"),
                severity="warning",
                for_="15m",
                summary="A model is steadily burning its error budget.",
                description="{{ $labels.model }}: {{ $value | humanizePercentage }} of requests "
                "failed over the long window (SLO {{ $labels.slo_objective }}).",
                runbook=_error_runbook("within days (3x over 1d, or 1x over 3d)"),
                # 0.8% errors: over the large model's 0.5% budget, under the default 1%.
                fires=Case(
                    series=_two(
                        _requests(DEFAULT_MODEL, 8, 992, 20), _requests(BIG_MODEL, 8, 992, 20)
                    ),
                    eval_time="3h",
                    interval="10m",
                    labels={
                        "cluster": "c1",
                        "model": BIG_MODEL,
                        "slo_objective": slos.availability_label(_BIG),
                    },
                    description=f"{BIG_MODEL}: 0.8% of requests failed over the long window "
                    f"(SLO {slos.availability_label(_BIG)}).",
                ),
                quiet=Case(
                    series=_two(
                        _requests(DEFAULT_MODEL, 3, 997, 20), _requests(BIG_MODEL, 3, 997, 20)
                    ),
                    eval_time="3h",
                    interval="10m",
                ),
            ),
            Alert(
                name="TuneloopInferenceTtftBudgetBurn",
                expr=slos.burn_expr(slos.TTFT_RECORD, SLOS, slos.PAGE, "ttft"),
                severity="critical",
                for_="2m",
                summary="A model is burning its time-to-first-token budget fast.",
                description="{{ $labels.model }}: {{ $value | humanizePercentage }} of requests "
                "missed the first-token threshold over the long window "
                "(SLO {{ $labels.slo_objective }}).",
                runbook=_ttft_runbook("at a rate that spends the month's budget in about two days"),
                # The default model: 10% over 1 s, past 6x its 1% budget. The large model: half
                # over 1 s but 10% over its own 2.5 s, under 6x its 5% budget.
                fires=Case(
                    series=_two(
                        _ttft(DEFAULT_MODEL, {"1.0": 90, "2.5": 95}, 100, 120),
                        _ttft(BIG_MODEL, {"1.0": 50, "2.5": 90}, 100, 120),
                    ),
                    eval_time="70m",
                    labels={
                        "cluster": "c1",
                        "model": DEFAULT_MODEL,
                        "slo_model": slos.DEFAULT_MODEL,
                        "slo_objective": slos.ttft_label(_DEFAULT),
                    },
                    description=f"{DEFAULT_MODEL}: 10% of requests missed the first-token "
                    f"threshold over the long window (SLO {slos.ttft_label(_DEFAULT)}).",
                ),
                quiet=Case(
                    series=_two(
                        _ttft(DEFAULT_MODEL, {"1.0": 98, "2.5": 99}, 100, 120),
                        _ttft(BIG_MODEL, {"1.0": 40, "2.5": 80}, 100, 120),
                    ),
                    eval_time="70m",
                ),
            ),
            Alert(
                name="TuneloopInferenceTtftBudgetSlowBurn",
                expr=slos.burn_expr(slos.TTFT_RECORD, SLOS, slos.TICKET, "ttft"),
                severity="warning",
                for_="15m",
                summary="A model is steadily burning its time-to-first-token budget.",
                description="{{ $labels.model }}: {{ $value | humanizePercentage }} of requests "
                "missed the first-token threshold over the long window "
                "(SLO {{ $labels.slo_objective }}).",
                runbook=_ttft_runbook("at a rate that spends the month's budget within the month"),
                # The large model: 8% over 2.5 s, past its 5% budget; the default 0.5% over 1 s.
                fires=Case(
                    series=_two(
                        _ttft(DEFAULT_MODEL, {"1.0": 995}, 1000, 20),
                        _ttft(BIG_MODEL, {"2.5": 920}, 1000, 20),
                    ),
                    eval_time="3h",
                    interval="10m",
                    labels={
                        "cluster": "c1",
                        "model": BIG_MODEL,
                        "slo_model": BIG_MODEL,
                        "slo_objective": slos.ttft_label(_BIG),
                    },
                    description=f"{BIG_MODEL}: 8% of requests missed the first-token "
                    f"threshold over the long window (SLO {slos.ttft_label(_BIG)}).",
                ),
                quiet=Case(
                    series=_two(
                        _ttft(DEFAULT_MODEL, {"1.0": 995}, 1000, 20),
                        _ttft(BIG_MODEL, {"2.5": 970}, 1000, 20),
                    ),
                    eval_time="3h",
                    interval="10m",
                ),
            ),
        ),
        recordings=slos.recordings(SLOS),
    )
]
