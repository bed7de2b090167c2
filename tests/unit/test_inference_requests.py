"""Request histograms (prompt and generation length, queue, prefill and decode time): each
engine's own series, normalised, and how many series the collector exports for them."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.inference import InferenceCollector, InferenceTarget
from agent.collectors.inference_engines import (
    Histogram,
    latencies,
    parse_samples,
    request_histograms,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"
INF = float("inf")
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN = "Qwen/Qwen2.5-7B-Instruct"
NEW_FAMILIES = (
    "tuneloop_inference_request_prompt_tokens",
    "tuneloop_inference_request_generation_tokens",
    "tuneloop_inference_request_queue_seconds",
    "tuneloop_inference_request_prefill_seconds",
    "tuneloop_inference_request_decode_seconds",
)


def load(name: str):
    return parse_samples((FIXTURES / f"{name}.metrics").read_text())


def test_vllm_exports_all_five_in_its_own_buckets() -> None:
    found = request_histograms(load("vllm"), "vllm")
    assert set(found) == {"prompt_length", "generation_length", "queue", "prefill", "decode"}
    prompt = found["prompt_length"][LLAMA]
    assert [le for le, _ in prompt.buckets][:4] == [1.0, 2.0, 5.0, 10.0]  # 1-2-5 up to 100000
    assert prompt.buckets[-2:] == ((100000.0, 4.0), (INF, 4.0))
    assert dict(prompt.buckets)[500.0] == 2.0 and prompt.sum == 5899.0
    queue = found["queue"][LLAMA]
    assert queue.buckets[:2] == ((0.3, 3.0), (0.5, 4.0)) and len(queue.buckets) == 22
    assert queue.sum == 0.6
    assert found["decode"][LLAMA].sum == 24.07 and found["prefill"][LLAMA].count == 4.0
    # the legacy fixture has none of them: nothing is made up
    assert request_histograms(load("vllm_legacy"), "vllm") == {}


def test_sglang_lengths_and_queue_summed_over_ranks_and_no_phase_split() -> None:
    found = request_histograms(load("sglang"), "sglang")
    assert set(found) == {"prompt_length", "generation_length", "queue"}
    queue = found["queue"][QWEN]  # dp_rank 0 saw 0.04 s and 0.3 s, dp_rank 1 saw 1.7 s
    assert dict(queue.buckets)[0.1] == 1.0 and dict(queue.buckets)[0.5] == 2.0
    assert queue.count == 3.0 and queue.sum == 2.04
    assert dict(found["prompt_length"][QWEN].buckets)[1500.0] == 2.0


def test_tgi_lengths_and_queue_use_the_configured_model() -> None:
    found = request_histograms(load("tgi"), "tgi", "bigcode/starcoder2-15b")
    assert set(found) == {"prompt_length", "generation_length", "queue"}
    assert found["queue"]["bigcode/starcoder2-15b"] == Histogram(
        (
            (0.001, 203.0),
            (0.01, 811.0),
            (0.1, 1307.0),
            (1.0, 1499.0),
            (10.0, 1521.0),
            (INF, 1521.0),
        ),
        97.31,
    )
    assert found["prompt_length"]["bigcode/starcoder2-15b"].sum == 402716.0


def test_triton_has_none() -> None:
    assert request_histograms(load("triton"), "triton") == {}


def test_series_of_one_model_sum_only_the_boundaries_all_of_them_report() -> None:
    lines = ["# TYPE vllm:request_queue_time_seconds histogram"]
    for rank, buckets in {
        "0": {"0.5": 1, "1.0": 2, "+Inf": 3},
        "1": {"1.0": 4, "2.0": 5, "+Inf": 6},
    }.items():
        lab = f'engine="{rank}",model_name="m"'
        lines += [
            f'vllm:request_queue_time_seconds_bucket{{{lab},le="{le}"}} {count}'
            for le, count in buckets.items()
        ]
        lines.append(f"vllm:request_queue_time_seconds_sum{{{lab}}} 1.5")
    index = parse_samples("\n".join(lines) + "\n")
    hist = request_histograms(index, "vllm")["queue"]["m"]
    assert hist == Histogram(((1.0, 6.0), (INF, 9.0)), 3.0)
    assert latencies(index, "vllm") == {}


def fetch(url: str, timeout_s: float) -> str:
    return (FIXTURES / f"{url.split('/')[2]}.metrics").read_text()


def new_series(collector: InferenceCollector) -> dict[str, int]:
    counts = dict.fromkeys(NEW_FAMILIES, 0)
    for family in collector.scrape():
        if family.name in counts:
            counts[family.name] += len(family.samples)
    return counts


def test_the_new_series_are_bounded_per_model() -> None:
    """A histogram of B finite buckets is B + 3 series (+Inf, _sum, _count). Per vLLM model:
    two length histograms of 16 buckets (1-2-5 up to 100000) and three time histograms of 21,
    2 x 19 + 3 x 24 = 110 series. Models per target are capped (64 by default)."""
    targets = [
        InferenceTarget("vllm", "http://vllm/metrics"),
        InferenceTarget("sglang", "http://sglang/metrics"),
        InferenceTarget("tgi", "http://tgi/metrics", model="m"),
        InferenceTarget("triton", "http://triton/metrics"),
    ]
    counts = new_series(InferenceCollector(targets, fetch=fetch))
    assert counts["tuneloop_inference_request_prefill_seconds"] == 24  # vLLM alone: 21 + 3
    assert counts["tuneloop_inference_request_prompt_tokens"] == 19 + 33 + 8
    assert sum(counts.values()) == 110 + 105 + 24  # vLLM, SGLang (2 x 33 + 39), TGI (3 x 8)
