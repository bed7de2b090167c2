"""Latency histograms and request outcomes: each engine's own series, passed through exactly."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.inference_engines import Histogram, latencies, outcomes, parse_samples

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"
INF = float("inf")


def load(name: str):
    return parse_samples((FIXTURES / f"{name}.metrics").read_text())


def test_vllm_histograms_keep_the_engine_buckets_and_outcomes_split_by_finished_reason() -> None:
    index = load("vllm")
    model = "meta-llama/Llama-3.1-8B-Instruct"
    found = latencies(index, "vllm")
    assert set(found) == {"ttft", "inter_token", "e2e"}
    itl = found["inter_token"][model]
    assert itl.buckets == (
        (0.01, 2104.0),
        (0.025, 81210.0),
        (0.05, 95120.0),
        (0.1, 96011.0),
        (INF, 96064.0),
    )
    assert itl.sum == 1985.4 and itl.count == 96064.0
    ttft = dict(found["ttft"][model].buckets)
    assert ttft[1.0] == 5.0 and ttft[0.04] == 1.0
    assert outcomes(index, "vllm") == {"success": {model: 448.0}, "aborted": {model: 5.0}}


def test_vllm_error_reason_and_legacy_time_per_output_token_name() -> None:
    body = "\n".join(
        [
            "# TYPE vllm:request_success_total counter",
            'vllm:request_success_total{finished_reason="stop",model_name="m"} 10',
            'vllm:request_success_total{finished_reason="error",model_name="m"} 2',
            "# TYPE vllm:time_per_output_token_seconds histogram",
            'vllm:time_per_output_token_seconds_bucket{le="0.05",model_name="m"} 3',
            'vllm:time_per_output_token_seconds_bucket{le="+Inf",model_name="m"} 4',
            'vllm:time_per_output_token_seconds_sum{model_name="m"} 0.5',
            'vllm:time_per_output_token_seconds_count{model_name="m"} 4',
            "",
        ]
    )
    index = parse_samples(body)
    assert outcomes(index, "vllm") == {"success": {"m": 10.0}, "error": {"m": 2.0}}
    assert latencies(index, "vllm") == {
        "inter_token": {"m": Histogram(((0.05, 3.0), (INF, 4.0)), 0.5)}
    }


def test_data_parallel_series_sum_per_le() -> None:
    lines = ["# TYPE vllm:e2e_request_latency_seconds histogram"]
    for engine, (low, total, total_sum) in {"0": (1, 2, 3.0), "1": (4, 8, 5.0)}.items():
        lab = f'engine="{engine}",model_name="m"'
        lines += [
            f'vllm:e2e_request_latency_seconds_bucket{{{lab},le="1.0"}} {low}',
            f'vllm:e2e_request_latency_seconds_bucket{{{lab},le="+Inf"}} {total}',
            f"vllm:e2e_request_latency_seconds_sum{{{lab}}} {total_sum}",
            f"vllm:e2e_request_latency_seconds_count{{{lab}}} {total}",
        ]
    hist = latencies(parse_samples("\n".join(lines) + "\n"), "vllm")["e2e"]["m"]
    assert hist == Histogram(((1.0, 5.0), (INF, 10.0)), 8.0)


def test_sglang_reports_aborts_only_and_its_own_buckets() -> None:
    index = load("sglang")
    model = "Qwen/Qwen2.5-7B-Instruct"
    assert outcomes(index, "sglang") == {"aborted": {model: 12.0}}
    found = latencies(index, "sglang")
    assert set(found) == {"ttft", "inter_token", "e2e"}
    assert found["inter_token"][model].count == 7.537231e06


def test_tgi_has_e2e_only_and_validation_failures_are_no_outcome() -> None:
    index = load("tgi")
    found = latencies(index, "tgi", "bigcode/starcoder2-15b")
    assert set(found) == {"e2e"}
    e2e = found["e2e"]["bigcode/starcoder2-15b"]
    assert e2e.buckets == ((0.1, 2.0), (1.0, 214.0), (10.0, 1399.0), (100.0, 1521.0), (INF, 1521.0))
    assert e2e.sum == 6522.8
    assert outcomes(index, "tgi", "bigcode/starcoder2-15b") == {
        "success": {"bigcode/starcoder2-15b": 1521.0},
        "error": {"bigcode/starcoder2-15b": 3.0},  # overloaded 3; validation 9 left out
    }


def test_triton_has_no_latency_histograms_and_cancelled_requests_are_aborted() -> None:
    index = load("triton")
    assert latencies(index, "triton") == {}
    assert outcomes(index, "triton") == {
        "success": {"tensorrt_llm": 2310.0, "resnet50": 100000.0},
        "error": {"tensorrt_llm": 2.0, "resnet50": 15.0},
        "aborted": {"tensorrt_llm": 3.0, "resnet50": 0.0},
    }


def test_a_histogram_without_inf_bucket_or_sum_is_skipped() -> None:
    body = "\n".join(
        [
            "# TYPE vllm:e2e_request_latency_seconds histogram",
            'vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="a"} 1',
            'vllm:e2e_request_latency_seconds_sum{model_name="a"} 0.5',
            'vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="b"} 1',
            'vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="b"} 1',
            'vllm:e2e_request_latency_seconds_sum{model_name="b"} 0.5',
            "",
        ]
    )
    assert latencies(parse_samples(body), "vllm") == {
        "e2e": {"b": Histogram(((1.0, 1.0), (INF, 1.0)), 0.5)}
    }
